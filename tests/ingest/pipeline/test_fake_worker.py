"""A fake worker on the live pipeline's control port (Cyrus -> dealer -> vaultctl serve): it
takes the jobs of a real delivery and answers each with forged entries (an expunge dated
2020, a purge). Nothing of it is recorded, every job is a dead letter saying why, and once a
real worker is there and the jobs are retried, the message is archived exactly once."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.ingest.broker.wire import FakeWorker, insider
from vault.config import Config
from vault.ingest.broker.jobs import FAILED, JobStore

pytestmark = pytest.mark.cyrus


def test_a_fake_worker_forges_nothing_and_loses_nothing(pipeline_factory):
    pipeline = pipeline_factory(workers=0)
    fake = FakeWorker(
        pipeline.addresses["control"], pipeline.addresses["worker"], curve=insider(pipeline.home, "worker")
    )
    fake.ready(20)
    msgid = f"<{uuid.uuid4().hex}@example.org>"
    pipeline.cyrus.lmtp_deliver(
        "alice@vault.test",
        f"From: a@example.org\r\nTo: alice@vault.test\r\nMessage-ID: {msgid}\r\nSubject: forged\r\n\r\nBody.\r\n".encode(),
    )
    spoiled: dict[str, str] = {}
    while "MessageNew" not in spoiled.values():
        job_id, event = fake.take(timeout=60)
        item = f"{event.get('mailboxID', 'nobox')}:1:1"
        fake.done(
            job_id,
            [
                {"kind": "message.expunged", "item": item, "data": {}, "time": "2020-01-01T00:00:00.000000Z"},
                {"kind": "retention.purged", "item": item, "data": {"rule": "x", "reason": "forged"}},
            ],
        )
        spoiled[job_id] = event["event"]
    store = JobStore.from_config(Config.load(pipeline.home))
    try:
        deadline = time.monotonic() + 60
        while any((j := store.get(i)) is None or j.state != FAILED for i in spoiled):
            assert time.monotonic() < deadline, [store.get(i) for i in spoiled]
            time.sleep(0.1)
        for job_id in spoiled:
            job = store.get(job_id)
            assert job is not None and f"result of worker {fake.name.decode()} refused" in (job.reason or "")
    finally:
        store.close()
    fake.close()
    log = json.loads(pipeline.vaultctl("log", "--json", "--mailbox", "user/alice").stdout or "[]")
    assert [e for e in log if e["kind"] in ("message.expunged", "message.appended")] == []

    pipeline.start_worker(0)
    retried = pipeline.vaultctl("retry", "--all")
    assert retried.stdout.strip() == f"{len(spoiled)} job(s) back in the queue", retried.stderr
    pipeline.wait_settled()
    assert pipeline.job_counts().get("FAILED", 0) == 0
    log = json.loads(pipeline.vaultctl("log", "--json", "--mailbox", "user/alice").stdout)
    appended = [e for e in log if e["kind"] == "message.appended"]
    assert [e["data"]["message_id"] for e in appended] == [msgid]
    assert not [e for e in log if e["kind"] == "message.expunged"]
    audit = json.loads(pipeline.vaultctl("audit", "--json").stdout)
    assert not [e for e in audit if e["kind"] == "retention.purged"]
