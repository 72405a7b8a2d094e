"""Nothing lost (issue 3 item 7): SIGKILL the broker, a worker and the shipper in the middle of
2,000 LMTP deliveries, restart each, reconcile meanwhile, and every message is archived
exactly once."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from vault.archive import Vault
from vault.config import Config
from vault.entries import Kind

pytestmark = [pytest.mark.cyrus, pytest.mark.slow]

USERS = ("alice", "bob", "carol", "dave")
DELIVERIES = 2000


def message(msgid: str) -> bytes:
    return (
        f"From: Fay <fay@example.org>\r\nTo: team@vault.test\r\nSubject: {msgid}\r\n"
        f"Message-ID: {msgid}\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\n"
        f"Body of {msgid}.\r\n"
    ).encode()


class Deliverer(threading.Thread):
    """Delivers each Message-ID over LMTP in turn, round robin over ``users``."""

    def __init__(self, server, msgids, users=USERS):
        super().__init__(daemon=True)
        self.server, self.msgids, self.users = server, msgids, users
        self.delivered = 0
        self.error: Exception | None = None

    def run(self):
        try:
            for i, msgid in enumerate(self.msgids):
                self.server.lmtp_deliver(f"{self.users[i % len(self.users)]}@vault.test", message(msgid))
                self.delivered += 1
        except Exception as e:  # reported by the test
            self.error = e

    def wait_for(self, count: int) -> None:
        while self.delivered < count and self.is_alive():
            time.sleep(0.02)


def appended_by_message_id(home) -> dict[str, list[str]]:
    """Every message.appended entry in the ledger, by Message-ID -> item ids."""
    found: dict[str, list[str]] = {}
    with Vault.open(Config.load(home)) as vault:
        for entry in vault.ledger.entries():
            if entry.kind == Kind.MESSAGE_APPENDED:
                assert entry.item is not None, entry  # an appended message always names its item
                found.setdefault(entry.data["message_id"], []).append(entry.item)
    return found


def test_kills_lose_nothing_and_duplicate_nothing(pipeline_factory):
    pipeline = pipeline_factory(workers=2, mode="external", users=USERS)
    tag = uuid.uuid4().hex[:8]
    msgids = [f"<{tag}-{i}@example.org>" for i in range(DELIVERIES)]
    deliverer = Deliverer(pipeline.cyrus, msgids)
    deliverer.start()

    deliverer.wait_for(500)
    pipeline.kill("broker")
    time.sleep(1.0)
    pipeline.restart("broker")

    deliverer.wait_for(1000)
    pipeline.kill("worker0")
    pipeline.restart("worker0")

    deliverer.wait_for(1250)  # the service's scheduled reconciliation, while deliveries are in flight
    reconciled = pipeline.vaultctl("reconcile", "--json")
    assert reconciled.returncode == 0, reconciled.stderr

    deliverer.wait_for(1500)
    pipeline.kill("dealer")  # the shipper: the hook keeps spooling meanwhile
    time.sleep(1.0)
    pipeline.restart("dealer")

    deliverer.join(600)
    assert deliverer.error is None, deliverer.error
    assert deliverer.delivered == DELIVERIES
    pipeline.wait_settled(seconds=300, quiet=3.0)
    assert pipeline.job_counts().get("FAILED", 0) == 0, pipeline.vaultctl("retry", "--list").stdout

    found = appended_by_message_id(pipeline.home)
    missing = [m for m in msgids if m not in found]
    twice = {m: items for m, items in found.items() if len(items) > 1}
    assert not missing, f"{len(missing)} message(s) never archived, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} message(s) archived more than once, e.g. {list(twice.items())[:3]}"
    items = [item for items in found.values() for item in items]
    assert len(items) == len(set(items)) == DELIVERIES
    verify = pipeline.vaultctl("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
