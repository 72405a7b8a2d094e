"""Waiting on what a server process logs: a line to appear, or a reload to be done."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


class LogWatch:
    """The log file of ``proc`` (its stdout and stderr)."""

    def __init__(self, proc: subprocess.Popen, path: Path):
        self.proc, self.path = proc, path

    def text(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait(self, text: str, seconds: float = 30, count: int = 1) -> None:
        """Until ``text`` is in the log ``count`` times; AssertionError if the process exits
        or the time is up, with the log."""
        deadline = time.monotonic() + seconds
        while self.text().count(text) < count:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"{text!r} not logged within {seconds} s:\n{self.text()}"
            time.sleep(0.05)

    def reload(self, done: str) -> None:
        """SIGHUP, then wait for one more ``done`` line than there was before."""
        before = self.text().count(done)
        self.proc.send_signal(signal.SIGHUP)
        self.wait(done, count=before + 1)
