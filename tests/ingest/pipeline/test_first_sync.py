"""First sync and discovery: mail Cyrus accepted while the dealer was down (its events lost)
lands in a mailbox the vault never saw; ``vaultctl reconcile --all`` finds it on the server
(IMAP LIST as the admin, through the collector), archives it whole with no --mailbox, and a
second run enumerates only what changed since (HIGHESTMODSEQ)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.ingest.pipeline.test_nothing_lost import appended_by_message_id, message

pytestmark = pytest.mark.cyrus


def reconcile_all(pipeline) -> dict[str, dict]:
    done = pipeline.vaultctl("reconcile", "--all", "--json")
    assert done.returncode == 0, done.stderr
    return {r["mailbox"]: r for r in json.loads(done.stdout)}


def wait_first_sync(pipeline, seconds: float = 120) -> None:
    """Until the vault service's first sync (at its first start) has completed."""
    path = pipeline.home / "reconcile-state.json"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and json.loads(path.read_text()).get("first_sync"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no first sync within {seconds} s:\n{pipeline.components['broker'].log()[-3000:]}")


def test_reconcile_all_archives_what_arrived_while_the_dealer_was_down(pipeline_factory):
    pipeline = pipeline_factory(workers=1, users=("alice", "bob", "carol"))
    wait_first_sync(pipeline)  # the service's first start: every mailbox on the server, empty or not
    listed = {r["name"] for r in json.loads(pipeline.vaultctl("ls", "--json").stdout)}
    assert {"user/alice", "user/bob", "user/carol"} <= listed, listed

    tag = uuid.uuid4().hex[:8]
    heard = [f"<{tag}-heard-{i}@example.org>" for i in range(3)]
    missed = [f"<{tag}-missed-{i}@example.org>" for i in range(4)]
    filed = [f"<{tag}-filed-{i}@example.org>" for i in range(2)]
    for m in heard:
        pipeline.cyrus.lmtp_deliver("alice@vault.test", message(m))
    pipeline.wait_settled(seconds=120, quiet=1.0)

    pipeline.components["dealer"].stop()
    for i, m in enumerate(missed):  # Cyrus says 250 and the events go nowhere
        pipeline.cyrus.lmtp_deliver(("bob" if i % 2 else "carol") + "@vault.test", message(m))
    bob = pipeline.cyrus.imap("bob")  # and a folder the vault never hears of
    bob.create("INBOX/Projects")
    for m in filed:
        bob.append("INBOX/Projects", None, None, message(m))
    bob.logout()
    pipeline.start_dealer()
    pipeline.wait_settled(seconds=120, quiet=1.0)
    assert not any(m in appended_by_message_id(pipeline.home) for m in missed + filed)

    first = reconcile_all(pipeline)
    assert (len(first["user/bob"]["appended"]), len(first["user/carol"]["appended"])) == (2, 2), first
    assert first["user/bob/Projects"]["folder_changes"][0] == "created", first
    assert first["user/bob/Projects"]["appended"] == [1, 2]
    assert first["user/alice"]["differences"] == 0
    found = appended_by_message_id(pipeline.home)
    everything = heard + missed + filed
    assert {m: len(found.get(m, [])) for m in everything} == {m: 1 for m in everything}

    # nothing changed: every mailbox is skipped on its HIGHESTMODSEQ; one delivery: that one only
    again = reconcile_all(pipeline)
    assert all(r["unchanged"] and r["differences"] == 0 for r in again.values()), again
    pipeline.components["dealer"].stop()
    pipeline.cyrus.lmtp_deliver("bob@vault.test", message(f"<{tag}-late@example.org>"))
    third = reconcile_all(pipeline)
    assert len(third["user/bob"]["appended"]) == 1 and not third["user/bob"]["unchanged"]
    assert all(r["unchanged"] for name, r in third.items() if name != "user/bob"), third
    pipeline.start_dealer()
