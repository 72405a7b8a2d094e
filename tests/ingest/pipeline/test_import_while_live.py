"""History back-filled while live ingest runs: the vault service holds the writer, so an import
of an old Maildir for a live user lands through it, into the live folder itself (Cyrus's name,
``user/alice``), while deliveries continue; nothing delivered is lost or doubled, a message the
history shares with the server is archived once, and nothing imported takes a UID Cyrus uses."""

from __future__ import annotations

import imaplib
import json
import os
import re
import time
import uuid

import pytest

from tests.core.helpers import write_maildir
from tests.ingest.pipeline.test_nothing_lost import Deliverer, appended_by_message_id, message

pytestmark = pytest.mark.cyrus

DELIVERIES = 200
HISTORY = 50
SHARED = 10  # live messages the history also holds: 5 byte for byte, 5 by Message-ID and date


def server_copies(cyrus, count: int) -> list[tuple[bytes, float]]:
    """The first ``count`` messages of alice's INBOX as the server holds them: bytes, internal date."""
    client = cyrus.imap("alice")
    try:
        client.select("INBOX", readonly=True)
        out = []
        for uid in range(1, count + 1):
            typ, data = client.uid("FETCH", str(uid), "(INTERNALDATE BODY.PEEK[])")
            assert typ == "OK" and data[0], data
            stamp = imaplib.Internaldate2tuple(data[0][0])
            assert stamp is not None, data[0][0]
            out.append((data[0][1], time.mktime(stamp)))
        return out
    finally:
        client.logout()


def wait_archived(pipeline, count: int, seconds: float = 120) -> None:
    """Until live ingest has archived ``count`` messages of alice's INBOX."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = pipeline.vaultctl("ls", "--json")
        rows = json.loads(done.stdout) if done.returncode == 0 else []
        if any(r["name"] == "user/alice" and r["messages"] >= count for r in rows):
            return
        time.sleep(0.2)
    raise AssertionError(f"live ingest did not archive {count} messages in {seconds} s")


def test_an_import_into_the_live_folder_lands_once(tmp_path, pipeline_factory):
    pipeline = pipeline_factory(workers=2, users=("alice",))
    tag = uuid.uuid4().hex[:8]
    live = [f"<{tag}-live-{i}@example.org>" for i in range(DELIVERIES)]
    old = [f"<{tag}-old-{i}@example.org>" for i in range(HISTORY)]
    deliverer = Deliverer(pipeline.cyrus, live, users=("alice",))
    deliverer.start()
    deliverer.wait_for(20)  # the live folder exists, deliveries go on
    wait_archived(pipeline, SHARED)

    history = write_maildir(tmp_path / "old-mail", {f"{i}.old:2,S": message(m) for i, m in enumerate(old)})
    for n, (data, when) in enumerate(server_copies(pipeline.cyrus, SHARED)):
        # what an old backup of the same mailbox holds: the server's bytes (another date), or
        # the message as sent (without what delivery added) with the server's internal date
        path = history / "cur" / f"shared{n}.old:2,S"
        if n % 2:
            hit = re.search(rb"Message-ID: (<[^>]+>)", data)
            assert hit is not None, data
            msgid = hit.group(1).decode()
            path.write_bytes(b"X-Backup: old copy\r\n" + message(msgid))
            os.utime(path, (when, when))
        else:
            path.write_bytes(data)
            os.utime(path, (when - 86400 * 30, when - 86400 * 30))

    done = pipeline.vaultctl("import", str(history), "--mailbox", "user/alice", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["appended"], report["already_archived"]) == (HISTORY, SHARED), report
    assert deliverer.is_alive() or deliverer.delivered == DELIVERIES

    # the name a mail client shows is taken for Cyrus's, and said so; a second run adds nothing
    again = pipeline.vaultctl("import", str(history), "--mailbox", "user/alice/INBOX", "--json")
    assert again.returncode == 0, again.stderr
    assert "user/alice/INBOX is Cyrus's user/alice" in again.stderr, again.stderr
    report = json.loads(again.stdout)
    assert (report["mailbox"], report["appended"], report["expunged"]) == ("user/alice", 0, 0), report
    assert (report["unchanged"], report["already_archived"]) == (HISTORY, SHARED), report

    deliverer.join(600)
    assert deliverer.error is None, deliverer.error
    pipeline.wait_settled(seconds=300, quiet=2.0)
    found = appended_by_message_id(pipeline.home)
    assert [m for m in live + old if m not in found] == []
    assert {m: items for m, items in found.items() if len(items) > 1} == {}
    folders = {row["name"]: row["messages"] for row in json.loads(pipeline.vaultctl("ls", "--json").stdout)}
    assert folders == {"user/alice": DELIVERIES + HISTORY}
    # history is numbered apart from Cyrus: the server's UIDs name the live messages only
    live_uids = {i.rsplit(":", 2)[1] for m in live for i in found[m]}
    history_uids = {i.rsplit(":", 2)[1] for m in old for i in found[m]}
    assert history_uids == {"0"} and "0" not in live_uids

    # reconciliation leaves the history alone and finds the folder in step with the server
    reconciled = pipeline.vaultctl("reconcile", "--mailbox", "user/alice", "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    [r] = json.loads(reconciled.stdout)
    assert (r["differences"], r["problems"]) == (0, []), r
