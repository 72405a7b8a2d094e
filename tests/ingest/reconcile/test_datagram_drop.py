"""Cyrus drops event datagrams over ~21 KB: a bulk \\Deleted + EXPUNGE of 1,300 messages
(the events list every Message-ID) never reaches a socket-mode listener, so the archive
misses the expunges; vaultctl reconcile finds and records every one of them."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest

from tests.ingest.collector.test_collector_cyrus import uniqueid
from tests.ingest.worker.live import LiveArchive
from tests.ingest.worker.test_handlers_cyrus import mail
from vault.ingest.cyrus.notify import decode_datagram
from vault.testing.net import wait_until

pytestmark = [pytest.mark.cyrus, pytest.mark.slow]
MESSAGES = 1300


class DatagramReceiver:
    """Cyrus's notifysocket, bound by us: every datagram's JSON, in arrival order."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(str(path))
        path.chmod(0o666)  # imapd and lmtpd run as user cyrus
        self.sock.settimeout(0.2)
        self.events: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            self.events.append(decode_datagram(data).message)

    def names(self) -> list[str]:
        return [json.loads(e)["event"] for e in self.events]

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_bulk_expunge_events_are_dropped_and_reconcile_heals(tmp_path, cyrus_factory):
    server = cyrus_factory(mode="socket", start=False)
    receiver = DatagramReceiver(server.notify_target)
    server.start()
    archive = LiveArchive(tmp_path / "vault", server)
    try:
        with server.lmtp() as lmtp:  # one connection
            for n in range(MESSAGES):
                lmtp.sendmail("sender@example.org", ["alice"], mail(f"bulk {n} {uuid.uuid4().hex}"))
        assert wait_until(lambda: receiver.names().count("MessageNew") >= MESSAGES, 60, step=0.1)
        archive.feed(list(receiver.events), batch=200)
        inbox = uniqueid(server, "user/alice")
        assert archive.quarantined == [] and len(archive.vault.catalog.live_items(inbox)) == MESSAGES

        seen = len(receiver.events)
        alice = server.imap("alice")
        alice.select("INBOX")
        assert alice.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
        assert alice.expunge()[0] == "OK"
        alice.logout()
        assert wait_until(lambda: "Logout" in receiver.names()[seen:], 20, step=0.1)
        assert wait_until(
            lambda: any("datagram too large" in line for line in server.log_lines()), 20, step=0.1
        ), "Cyrus did not log the dropped datagram"
        missed = receiver.events[seen:]
        assert not [e for e in missed if json.loads(e)["event"] in ("MessageExpunge", "MessageTrash")]
        archive.feed(missed)
        assert len(archive.vault.catalog.live_items(inbox)) == MESSAGES  # the archive missed it

        done = archive.vaultctl("reconcile", "--mailbox", "user/alice", "--json")
        assert done.returncode == 0, done.stderr
        [report] = json.loads(done.stdout)
        assert report["expunged"] == list(range(1, MESSAGES + 1)) and report["appended"] == []
        assert archive.vault.catalog.live_items(inbox) == []
        differences = [
            e
            for e in archive.vault.ledger.entries()
            if e.kind == "reconcile.difference" and e.data["difference"] == "expunged"
        ]
        assert len(differences) == MESSAGES
    finally:
        archive.close()
        receiver.close()
