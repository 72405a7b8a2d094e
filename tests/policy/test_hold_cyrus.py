"""A hold reaches Cyrus where it can: placing a hold on a custodian whose INBOX live ingest
archives asks Cyrus (through the collector) to set noexpire_until on it. Cyrus 3.6 (Debian
12) has no such entry and refuses it: the hold is placed all the same, says so, and leaves
the server as it was; a custodian with no live INBOX is not asked at all."""

from __future__ import annotations

import imaplib
import json

import pytest

from tests.ingest.worker.live import LiveArchive, quiet, wait_for_event
from tests.ingest.worker.test_handlers_cyrus import mail
from vault.ingest.collector.frames import NOEXPIRE_ENTRY

pytestmark = pytest.mark.cyrus
imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))


@pytest.fixture
def archive(tmp_path, cyrus_factory):
    live = LiveArchive(tmp_path / "vault", cyrus_factory())
    yield live
    live.close()


def noexpire_until(server, mailbox: str) -> bytes:
    client = server.imap(server.admin)
    try:
        typ, data = client._simple_command("GETMETADATA", f'"{mailbox}"', f"({NOEXPIRE_ENTRY})")
        assert typ == "OK", data
        return b"".join(d for d in client.untagged_responses.pop("METADATA", []) if isinstance(d, bytes))
    finally:
        client.logout()


def test_a_hold_on_cyrus_3_6_says_the_server_refused_noexpire_until(archive):
    server = archive.cyrus
    server.lmtp_deliver("alice@vault.test", mail("held"))
    wait_for_event(server, lambda e: e["event"] == "MessageNew")
    quiet(server)
    archive.feed_new_hook_events()
    assert archive.vault.catalog.has_events_for(archive.vault.catalog.folder_id("user/alice"))
    before = noexpire_until(server, "user/alice")
    assert b"NIL" in before, before

    placed = archive.vaultctl("hold", "create", "m-1", "--custodian", "alice", "--reason", "litigation")
    assert placed.returncode == 0, placed.stderr
    assert "hold 'm-1' placed on alice" in placed.stdout
    assert "Cyrus does not keep user/alice's expunged and deleted mail" in placed.stdout, placed.stdout
    assert "noexpire_until" in placed.stdout and "Permission denied" in placed.stdout
    assert noexpire_until(server, "user/alice") == before
    assert json.loads((archive.home / "cyrus-holds.json").read_text()) == {}

    other = archive.vaultctl("hold", "create", "m-2", "--custodian", "nobody", "--reason", "audit", "--force")
    assert other.returncode == 0, other.stderr
    assert other.stdout.startswith("hold 'm-2' placed on nobody") and "Cyrus" not in other.stdout
