"""First sync: a Cyrus that held mail for three users before vault came (no events, and no
sync log: the channel is newer than the mail) is copied whole by the vault service at its
first start, with no command; ``vaultctl reconcile --all`` then finds every mailbox in step
and skips their messages on HIGHESTMODSEQ."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.ingest.pipeline.test_nothing_lost import appended_by_message_id, message

pytestmark = pytest.mark.cyrus

USERS = ("alice", "bob", "carol")


def wait_first_sync(pipeline, seconds: float = 120) -> None:
    pipeline.wait_first_sync(seconds)


def test_the_first_start_copies_a_server_that_already_holds_mail(pipeline_factory):
    pipeline = pipeline_factory(workers=1, users=USERS, start=False)
    tag = uuid.uuid4().hex[:8]
    held = {u: [f"<{tag}-{u}-{i}@example.org>" for i in range(n)] for u, n in zip(USERS, (3, 2, 4))}
    for user, msgids in held.items():
        for m in msgids:
            pipeline.cyrus.lmtp_deliver(f"{user}@vault.test", message(m))
    bob = pipeline.cyrus.imap("bob")
    bob.create("INBOX/Old")
    bob.append("INBOX/Old", r"(\Seen)", None, message(f"<{tag}-old@example.org>"))
    bob.logout()
    for path in (pipeline.cyrus.base / "lib" / "sync").rglob("log*"):
        path.unlink()  # what the server held before vault's channel was there: no line names it

    pipeline.start()
    wait_first_sync(pipeline)
    found = appended_by_message_id(pipeline.home)
    every = [m for msgids in held.values() for m in msgids] + [f"<{tag}-old@example.org>"]
    assert {m: len(found.get(m, [])) for m in every} == {m: 1 for m in every}
    listed = {r["name"]: r["messages"] for r in json.loads(pipeline.vaultctl("ls", "--json").stdout)}
    assert listed == {"user/alice": 3, "user/bob": 2, "user/carol": 4, "user/bob/Old": 1}

    again = pipeline.vaultctl("reconcile", "--all", "--json")
    assert again.returncode == 0, again.stderr
    reports = json.loads(again.stdout)
    assert len(reports) == 4 and all(r["unchanged"] and r["differences"] == 0 for r in reports), reports
