"""Bad input through the real broker and workers: malformed JSON, an unknown event type, an
event for a mailbox neither the archive nor the server knows. Each is kept with its reason
(dead-letter list, ``vaultctl status``, ``vaultctl retry --list``), nothing crashes, good events
keep flowing, and ``vaultctl retry`` puts them back in the queue."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.ingest.broker.wire import FakeDealer, insider

pytestmark = pytest.mark.cyrus


def test_bad_events_are_kept_with_their_reason(pipeline_factory):
    pipeline = pipeline_factory(workers=1)
    bad = {
        "malformed": b'{"event": "MessageNew", "uri": ',
        "unknown type": json.dumps(
            {"event": "MessageTeleported", "uri": "imap://alice@vault.test/INBOX"}
        ).encode(),
        "unknown mailbox": json.dumps(
            {
                "event": "MessageNew",
                "uri": "imap://alice@vault.test/INBOX.Nowhere;UIDVALIDITY=1/;UID=1",
                "mailboxID": f"no-such-{uuid.uuid4().hex}",
                "user": "alice",
                "timestamp": "2026-11-22T12:00:00.000+00:00",
            }
        ).encode(),
    }
    with FakeDealer(pipeline.addresses["dealer"], insider(pipeline.home)) as dealer:
        ids = {what: dealer.send(raw) for what, raw in bad.items()}
    msgid = f"<{uuid.uuid4().hex}@example.org>"
    pipeline.cyrus.lmtp_deliver(
        "alice@vault.test",
        (
            f"From: a@example.org\r\nTo: alice@vault.test\r\nMessage-ID: {msgid}\r\n"
            f"Subject: still flowing\r\n\r\nBody.\r\n"
        ).encode(),
    )
    pipeline.wait_settled()

    listed = json.loads(pipeline.vaultctl("retry", "--list", "--json").stdout)
    reasons = {job["id"]: job["reason"] for job in listed}
    assert set(reasons) == set(ids.values())
    assert "malformed event JSON" in reasons[ids["malformed"]]
    assert "unknown event type 'MessageTeleported'" in reasons[ids["unknown type"]]
    assert "unknown to the archive and to the server" in reasons[ids["unknown mailbox"]]

    status = json.loads(pipeline.vaultctl("status", "--json").stdout)
    assert status["broker_jobs_failed"] == 3
    assert all(eid[:12] in status["broker_failed"] for eid in ids.values())
    appended = [
        e
        for e in json.loads(pipeline.vaultctl("log", "--json", "--mailbox", "user/alice").stdout)
        if e["kind"] == "message.appended"
    ]
    assert [e["data"]["message_id"] for e in appended] == [msgid]
    assert all(c.alive for c in pipeline.components.values())

    retried = pipeline.vaultctl("retry", ids["malformed"][:10])
    assert retried.returncode == 0 and "1 job(s) back" in retried.stdout, retried.stderr
    pipeline.wait_settled()  # processed again, and kept again: still malformed
    assert {j["id"] for j in json.loads(pipeline.vaultctl("retry", "--list", "--json").stdout)} == set(
        ids.values()
    )
    assert pipeline.vaultctl("retry", "--all").stdout.strip() == "3 job(s) back in the queue"
