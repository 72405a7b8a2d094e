"""Exactly once by the message, not only by the job: two jobs whose events name the same
message (the same Cyrus event shipped again in other bytes, so under another job id) archive
it once, whichever of them is answered first and whether or not they are committed in one
batch. The real ``vaultctl serve`` (broker, committer); the dealer and the worker are
hand-written peers (tests/ingest/broker/wire.py)."""

from __future__ import annotations

import json

import pytest

from tests.ingest.broker.conftest import CUSTODIAN, FOLDER, Served
from tests.ingest.broker.wire import FakeDealer, FakeWorker, insider
from vault.archive import Vault
from vault.ingest.broker.jobs import DONE


def new_message_event(mailbox_id: str, uidvalidity: int, uid: int) -> dict:
    return {
        "event": "MessageNew",
        "timestamp": "2026-11-22T13:00:00.000Z",
        "service": "lmtp",
        "mailboxID": mailbox_id,
        "uri": f"imap://vault.test/{FOLDER};UIDVALIDITY={uidvalidity}/;UID={uid}",
        "modseq": 100 + uid,
        "user": CUSTODIAN,
        "vnd.cmu.sessionId": f"lmtp-{uid}",
    }


def appended(job_id: str, item: str, blob: str, size: int) -> dict:
    """The message.appended a worker makes of the MessageNew of ``item``."""
    return {
        "kind": "message.appended",
        "item": item,
        "data": {
            "event": job_id,
            "blob": blob,
            "size": size,
            "internal_date": "2026-11-22T13:00:00.000000Z",
            "flags": [],
            "mailbox": FOLDER,
            "message_id": f"<again-{item}@example.org>",
            "service": "lmtp",
        },
        "time": None,
        "actor": CUSTODIAN,
    }


@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "in-one-go"])
def test_one_event_shipped_twice_in_other_bytes_archives_its_message_once(served: Served, together):
    with Vault.open(served.config, catch_up=False) as vault:
        mailbox_id = vault.catalog.folder_id(FOLDER)
        assert mailbox_id is not None
        folder = vault.catalog.folder(mailbox_id)
        assert folder is not None
        [row, *_] = vault.catalog.live_items(mailbox_id)
        uidvalidity, blob, size = int(folder["uidvalidity"]), row["blob"], row["size"]
    uid = 1000
    item = f"{mailbox_id}:{uidvalidity}:{uid}"
    event = new_message_event(mailbox_id, uidvalidity, uid)
    # the same notification, as a re-spool after a crash or another transport could render it
    shipped = [json.dumps(event).encode(), json.dumps(event, indent=1, sort_keys=True).encode()]
    worker = FakeWorker(
        served.addresses["control"], served.addresses["worker"], curve=insider(served.home, "worker")
    )
    worker.ready(2)
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        ids = [dealer.send(raw) for raw in shipped]
    assert ids[0] != ids[1]  # two jobs: the job id alone cannot tell they are one message
    jobs = dict(worker.take() for _ in range(2))  # new messages commute: both out at once
    assert set(jobs) == set(ids)
    for job_id in reversed(ids):  # the later shipment answered first
        worker.done(job_id, [appended(job_id, item, blob, size)])
        if not together:
            served.wait_job(job_id, DONE)
    for job_id in ids:
        served.wait_job(job_id, DONE)  # both done: nothing to retry, nothing lost
    worker.close()

    archived = [e for e in served.entries("message.appended") if e.item == item]
    assert len(archived) == 1, archived
    assert archived[0].data["event"] in ids
    verified = served.vaultctl("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
