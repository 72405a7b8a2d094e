"""Completeness from Cyrus's sync log, against a real Cyrus: with the dealer down, and
separately the vault service down, Cyrus accepts mail for a user the vault never saw, folders
are created and renamed, flags set; once things are back, the service's sync-log follower
archives all of it (no reconcile command, no --mailbox, no full scan), each message once. A
reader killed between taking ``log-run`` and removing it loses no line: the batch is
reconciled at the next start."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.ingest.pipeline.test_first_sync import wait_first_sync
from tests.ingest.pipeline.test_nothing_lost import appended_by_message_id, message
from vault.config import Config
from vault.ingest.collector.client import CollectorClient

pytestmark = pytest.mark.cyrus


def folders(pipeline) -> dict[str, int]:
    done = pipeline.vaultctl("ls", "--json")
    return {r["name"]: r["messages"] for r in json.loads(done.stdout)} if done.returncode == 0 else {}


def wait_for(what: str, predicate, pipeline, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {seconds} s:\n{pipeline.components['broker'].log()[-3000:]}")


def archived_once(pipeline, msgids) -> bool:
    found = appended_by_message_id(pipeline.home)
    return all(len(found.get(m, [])) == 1 for m in msgids)


def flags_of(pipeline, mailbox: str) -> dict[str, list[str]]:
    """Message-ID -> flags of what the archive holds in ``mailbox`` now."""
    from vault.archive import Vault
    from vault.config import Config

    with Vault.open(Config.load(pipeline.home)) as vault:
        mailbox_id = vault.catalog.folder_id(mailbox)
        return (
            {i["message_id"]: sorted(i["flags"]) for i in vault.catalog.live_items(mailbox_id)}
            if mailbox_id
            else {}
        )


def test_what_the_events_missed_is_archived_from_the_sync_log(pipeline_factory):
    pipeline = pipeline_factory(workers=1, users=("alice", "bob"))
    wait_first_sync(pipeline)
    tag = uuid.uuid4().hex[:8]
    ids = {
        k: [f"<{tag}-{k}-{i}@example.org>" for i in range(n)]
        for k, n in (("dave", 3), ("bob", 2), ("carl", 2), ("late", 2))
    }

    # the dealer down: a user the vault never saw, a folder created, filled, flagged, renamed
    pipeline.components["dealer"].stop()
    pipeline.cyrus.create_mailbox("user/dave")
    for m in ids["dave"]:
        pipeline.cyrus.lmtp_deliver("dave@vault.test", message(m))
    bob = pipeline.cyrus.imap("bob")
    bob.create("INBOX/Draft")
    for m in ids["bob"]:
        bob.append("INBOX/Draft", None, None, message(m))
    bob.select("INBOX/Draft")
    bob.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
    bob.unselect()
    bob.rename("INBOX/Draft", "INBOX/Final")
    bob.logout()
    pipeline.start_dealer()
    wait_for("the missed changes", lambda: archived_once(pipeline, ids["dave"] + ids["bob"]), pipeline)
    wait_for("the rename", lambda: "user/bob/Final" in folders(pipeline), pipeline)
    listed = folders(pipeline)
    assert (listed["user/dave"], listed["user/bob/Final"]) == (3, 2), listed
    assert "user/bob/Draft" not in listed
    assert flags_of(pipeline, "user/bob/Final") == {ids["bob"][0]: ["\\Flagged"], ids["bob"][1]: []}

    # the vault service down; and a reader that took log-run and died before removing it
    pipeline.components["broker"].kill()
    for m in ids["carl"]:
        pipeline.cyrus.lmtp_deliver("alice@vault.test", message(m))
    with CollectorClient.from_config(Config.load(pipeline.home)) as collector:  # the workers' CURVE key
        taken = collector.sync_log()  # log renamed to log-run; never acknowledged
    assert taken["token"] and "user/alice" in taken["mailboxes"], taken
    run = pipeline.cyrus.base / "lib" / "sync" / "vault" / "log-run"
    assert run.exists()
    for m in ids["late"]:  # into a new log, behind the batch left over
        pipeline.cyrus.lmtp_deliver("dave@vault.test", message(m))
    pipeline.start_broker()
    wait_for(
        "what arrived while the service was down",
        lambda: archived_once(pipeline, ids["carl"] + ids["late"]),
        pipeline,
    )
    wait_for("the batch removed", lambda: not run.exists(), pipeline)

    found = appended_by_message_id(pipeline.home)
    every = [m for group in ids.values() for m in group]
    assert {m: len(found.get(m, [])) for m in every} == {m: 1 for m in every}
    assert {m: items for m, items in found.items() if len(items) > 1} == {}


def test_an_event_still_in_the_dealer_is_recorded_before_the_log_reconciles(pipeline_factory):
    """Cyrus logs a change as it emits its event: the follower may read the log line while
    the event is still in the dealer. Held there (SIGSTOP; socket mode, so Cyrus does not wait) for less than the follower's quiet
    time after the change, the flag change must still come first in the ledger, and the
    expunge be the event's, not a reconciliation's."""
    import signal

    from tests.policy.helpers import ledger_entries
    from vault.entries import Kind

    pipeline = pipeline_factory(workers=1, mode="socket", users=("alice",))  # datagrams wait in the kernel
    wait_first_sync(pipeline)
    mid = f"<{uuid.uuid4().hex[:8]}-held@example.org>"
    pipeline.cyrus.lmtp_deliver("alice@vault.test", message(mid))
    wait_for("the delivery", lambda: archived_once(pipeline, [mid]), pipeline)
    pipeline.wait_settled()
    time.sleep(2.5)  # the last event is older than the follower's quiet time
    (item,) = appended_by_message_id(pipeline.home)[mid]

    dealer = pipeline.components["dealer"].proc
    assert dealer is not None
    dealer.send_signal(signal.SIGSTOP)  # the events wait in the dealer; the sync log does not
    try:
        alice = pipeline.cyrus.imap("alice")
        alice.select("INBOX")
        alice.uid("STORE", "1:*", "+FLAGS", r"(\Deleted)")
        alice.expunge()
        alice.logout()
        time.sleep(1.2)  # the follower reads the log every second
    finally:
        dealer.send_signal(signal.SIGCONT)

    def expunged() -> list:
        return [e for e in ledger_entries(pipeline.home, Kind.MESSAGE_EXPUNGED) if e.item == item]

    wait_for("the expunge", lambda: bool(expunged()), pipeline)
    pipeline.wait_settled()
    time.sleep(3)  # and whatever the follower does after
    changes = [
        (e.kind, e.actor)
        for e in ledger_entries(pipeline.home, Kind.FLAGS_SET, Kind.MESSAGE_EXPUNGED)
        if e.item == item
    ]
    assert [k for k, _ in changes] == [Kind.FLAGS_SET, Kind.MESSAGE_EXPUNGED], changes
    assert all(actor != "vault-synclog" for _, actor in changes), changes
