"""Each dealer mode against a real Cyrus 3.6: every delivery's event reaches the broker and leaves
the spool (MailboxModseq never: the dealer drops it); an event past the ~21 KB datagram limit is lost by Cyrus in the datagram modes and
arrives whole in stream mode."""

import json
import shutil
import uuid

import pytest

from tests.ingest.dealer.helpers import REPO, DealerProcess, TestBroker, spool_files, wait_for
from vault.testing.cli import vaultctl
from vault.testing.cyrus_server import new_base_dir

pytestmark = pytest.mark.cyrus

DELIVERIES = 25
BULK = 300  # x ~85-byte Message-IDs in vnd.cmu.midset: ~26 KB, past the 21,267-byte datagram cap


def message(msgid: str, rcpt: str) -> bytes:
    return (
        f"From: Dave <dave@example.org>\r\nTo: {rcpt}\r\nSubject: {msgid}\r\nMessage-ID: {msgid}\r\n"
        f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\nBody.\r\n"
    ).encode()


def events(broker, kind):
    return [e for e in (json.loads(raw) for raw in broker.raws()) if e["event"] == kind]


@pytest.fixture
def reachable_dir():
    """Under the Cyrus servers' root: user cyrus can reach it (pytest's tmp dirs are root-only)."""
    d = new_base_dir("dealer")
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", ["external", "socket", "stream"])
def test_mode_end_to_end(mode, cyrus_factory, reachable_dir):
    spool = reachable_dir / "spool"
    with TestBroker() as broker:
        if mode == "external":
            hook = reachable_dir / "notify-hook"
            done = vaultctl(
                None,
                "dealer",
                "install-hook",
                "--spool",
                str(spool),
                "--output",
                str(hook),
                "--owner",
                "cyrus",
                text=False,
                cwd=REPO,
            )
            assert done.returncode == 0, done.stderr
            server = cyrus_factory(mode="external", notify_target=hook)
            dealer = DealerProcess("--mode", "external", "--spool", str(spool), "--broker", broker.address)
        else:
            server = cyrus_factory(mode=mode)
            dealer = DealerProcess(
                "--mode",
                mode,
                "--listen",
                str(server.notify_target),
                "--spool",
                str(spool),
                "--broker",
                broker.address,
                "--socket-owner",
                "cyrus",
            )
        with dealer:
            tag = uuid.uuid4().hex[:8]
            sent = [f"<{tag}-{i}@example.org>" for i in range(DELIVERIES)]
            for msgid in sent:
                server.lmtp_deliver("alice@vault.test", message(msgid, "alice@vault.test"))

            def delivered():
                got = [m for e in events(broker, "MessageNew") for m in e.get("vnd.cmu.midset", [])]
                return all(m in got for m in sent)

            wait_for(delivered, 30, what=f"{DELIVERIES} MessageNew events at the broker")
            wait_for(
                lambda: not spool_files(spool) and not spool_files(spool, "tmp"),
                10,
                what="the spool to empty once everything is acked",
            )
            assert broker.problems == [] and spool_files(spool, "bad") == []
            # one per delivery from Cyrus, answered and dropped by the dealer (spool.DROPPED_EVENTS)
            assert events(broker, "MailboxModseq") == []
            # every answer read whole by Cyrus (the stream listener closes once it has answered):
            # notify_dlist logs "error sending" for a reply it could not read, "response" for a NO
            assert [
                line for line in server.log_lines() if "error sending" in line or "response" in line
            ] == []

            # One event far past the datagram limit: \Deleted on BULK messages with long ids.
            bulk = [f"<{tag}-bulk-{i}-{'m' * 60}@example.org>" for i in range(BULK)]
            for msgid in bulk:
                server.lmtp_deliver("bob@vault.test", message(msgid, "bob@vault.test"))
            client = server.imap("bob")
            try:
                client.select("INBOX")
                assert client.store("1:*", "+FLAGS", r"(\Deleted)")[0] == "OK"
                # a small event after the big one shows when everything before it has been handled
                assert client.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
            finally:
                client.logout()
            wait_for(
                lambda: any(
                    "\\Flagged" in e.get("flagNames", "")
                    for e in events(broker, "FlagsSet")
                    if e["uri"].startswith("imap://vault.test/user/bob")
                ),
                60,
                what="the FlagsSet after the bulk change",
            )
            trash = [e for e in events(broker, "MessageTrash") if bulk[0] in e.get("vnd.cmu.midset", [])]
            if mode == "stream":
                [whole] = trash
                assert whole["vnd.cmu.midset"] == bulk
                assert max(len(raw) for raw in broker.raws()) > 21_300
            else:
                assert trash == []
                wait_for(
                    lambda: any("datagram too large" in line for line in server.log_lines()),
                    10,
                    what="Cyrus to log the dropped datagram",
                )
        assert dealer.proc is not None
        assert dealer.proc.returncode == 0, dealer.output()
