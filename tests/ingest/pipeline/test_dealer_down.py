"""The dealer daemon down in stream mode: Cyrus cannot hand over the events of that moment
(nobody listens), so they are never spooled; Cyrus's sync log names the mailbox all the
same, and the vault service's follower reconciles it: every message archived exactly once
with no command; a reconciliation asked of the running service (its local API, never the
event wire) then finds nothing left."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.ingest.pipeline.test_nothing_lost import Deliverer, appended_by_message_id

pytestmark = pytest.mark.cyrus

DELIVERIES = 120


def test_the_sync_log_heals_what_a_dead_dealer_missed(pipeline_factory):
    pipeline = pipeline_factory(workers=2, mode="stream")
    tag = uuid.uuid4().hex[:8]
    msgids = [f"<{tag}-{i}@example.org>" for i in range(DELIVERIES)]
    deliverer = Deliverer(pipeline.cyrus, msgids, users=("alice",))
    deliverer.start()
    deliverer.wait_for(40)
    pipeline.kill("dealer")
    at_kill = deliverer.delivered
    deliverer.wait_for(80)
    missed = deliverer.delivered - at_kill
    pipeline.restart("dealer")
    deliverer.join(300)
    assert deliverer.error is None and deliverer.delivered == DELIVERIES
    pipeline.wait_settled()
    assert missed > 0
    # no command: the service follows Cyrus's sync log and reconciles what it names
    deadline = time.monotonic() + 120
    while len(appended_by_message_id(pipeline.home)) < DELIVERIES and time.monotonic() < deadline:
        time.sleep(0.5)
    pipeline.wait_settled()
    done = pipeline.vaultctl("reconcile", "--json")
    assert done.returncode == 0, done.stderr
    # the service holds the vault: it reconciled with its writer, and found nothing left
    assert sum(len(r["appended"]) for r in json.loads(done.stdout)) == 0
    after = appended_by_message_id(pipeline.home)
    assert sorted(after) == sorted(msgids)
    assert all(len(items) == 1 for items in after.values())
