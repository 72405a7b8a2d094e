"""Nothing doubled when a reconciliation meets a delivery in flight: the vault service's
scheduled reconciliation runs on the committer's thread while live ingest goes on, so it can
archive a message whose MessageNew job a worker holds at that moment (a worker that read the
catalog before the reconciliation committed). The worker's result, under a job id the ledger
has never seen, must not archive the message a second time.

The whole pipeline with a real Cyrus; the worker holding the job is a hand-written peer
(tests/ingest/broker/wire.py) so the moment is chosen, not hoped for."""

from __future__ import annotations

import json
import time

import pytest

from tests.ingest.broker.wire import FakeWorker, insider
from vault.archive import Vault
from vault.config import Config
from vault.entries import Kind
from vault.ingest.broker.jobs import DONE, JobStore

pytestmark = pytest.mark.cyrus


def message(n: int) -> bytes:
    return (
        f"From: Fay <fay@example.org>\r\nTo: alice@vault.test\r\nSubject: race {n}\r\n"
        f"Message-ID: <race-{n}-{time.time_ns()}@example.org>\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
        f"\r\nBody {n}.\r\n"
    ).encode()


def appended_entries(home) -> list:
    with Vault.open(Config.load(home), catch_up=False) as vault:
        return [e for e in vault.ledger.entries() if e.kind == Kind.MESSAGE_APPENDED]


def wait_done(home, job_id: str, seconds: float = 60) -> None:
    store = JobStore.from_config(Config.load(home))
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if store.state_of(job_id) == (DONE, None):
                return
            time.sleep(0.1)
        raise AssertionError(f"job {job_id[:12]} not done: {store.state_of(job_id)}")
    finally:
        store.close()


def test_a_reconciliation_of_a_delivery_a_worker_holds_archives_it_once(pipeline_factory):
    pipeline = pipeline_factory(workers=1, users=("alice",))
    pipeline.cyrus.lmtp_deliver("alice@vault.test", message(1))  # the INBOX becomes a live folder
    pipeline.wait_settled(seconds=120)
    assert len(appended_entries(pipeline.home)) == 1
    pipeline.components["worker0"].stop()
    holder = FakeWorker(
        pipeline.addresses["control"], pipeline.addresses["worker"], curve=insider(pipeline.home, "worker")
    )
    holder.ready()

    pipeline.cyrus.lmtp_deliver("alice@vault.test", message(2))
    job_id, event = holder.take(timeout=60)  # the delivery's job, with "a worker"
    assert event["event"] == "MessageNew"
    reconciled = pipeline.vaultctl("reconcile", "--json")  # meanwhile: through the service
    assert reconciled.returncode == 0, reconciled.stderr
    [report] = [r for r in json.loads(reconciled.stdout) if r["mailbox_id"] == event["mailboxID"]]
    uid = int(event["uri"].rsplit(";UID=", 1)[1])
    assert report["appended"] == [uid]
    [by_reconcile] = [e for e in appended_entries(pipeline.home) if e.data.get("reconciled")]

    # the worker's answer, as a real one makes it from the catalog it read before that commit
    data = {k: by_reconcile.data[k] for k in ("blob", "size", "internal_date", "mailbox", "message_id")}
    holder.done(
        job_id,
        [
            {
                "kind": Kind.MESSAGE_APPENDED,
                "item": by_reconcile.item,
                "data": {**data, "flags": [], "service": "lmtp", "event": job_id},
                "time": None,
                "actor": "alice",
            }
        ],
    )
    wait_done(pipeline.home, job_id)  # accepted: the job is done, nothing to retry
    holder.close()

    found = [e.item for e in appended_entries(pipeline.home)]
    assert len(found) == len(set(found)) == 2, found
    assert pipeline.job_counts().get("FAILED", 0) == 0
    verify = pipeline.vaultctl("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
