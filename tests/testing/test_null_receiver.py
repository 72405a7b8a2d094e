"""The null receiver (the ceiling reference of bench/ingest_bench.py) keeps a real Cyrus
delivering in socket and stream mode and takes every event Cyrus sends it."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import pytest

from vault.testing.cli import REPO

pytestmark = pytest.mark.cyrus


def _receiver(mode: str, path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault.testing.null_receiver", mode, str(path), "--owner", "cyrus"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert "null receiver ready" in proc.stderr.readline()
    return proc


def _received(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    _, out = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    return int(out.strip().rsplit(" ", 1)[1])


@pytest.mark.parametrize("mode", ["socket", "stream"])
def test_cyrus_delivers_to_the_null_receiver_and_it_counts_each_event(cyrus_factory, mode):
    server = cyrus_factory(mode=mode, start=False)
    proc = _receiver(mode, server.notify_target)
    try:
        server.start()
        for i in range(3):
            msgid = f"<{uuid.uuid4().hex}@example.org>"
            text = f"From: d@example.org\r\nTo: alice@vault.test\r\nSubject: {i}\r\nMessage-ID: {msgid}\r\n\r\nx\r\n"
            server.lmtp_deliver("alice", text.encode())  # raises unless 250
        # each delivery brings Cyrus's MailboxModseq and MessageNew at least
        assert _received(proc) >= 6
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
