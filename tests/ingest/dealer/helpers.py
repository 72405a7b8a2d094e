"""Test-side peers of the dealer: a broker ROUTER that follows the spec, Cyrus's samples, a
dealer daemon run through the real CLI."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.data import data_file
from vault.config import Config
from vault.curve.guard import ClientCurve, client_curve
from vault.curve.keys import init_key, key_dir, trust
from vault.testing.broker_standin import StandInBroker, broker_curve
from vault.testing.cli import vaultctl_argv

REPO = Path(__file__).resolve().parents[3]


def wait_for(predicate, seconds: float = 10.0, step: float = 0.01, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(step)


# ---------------------------------------------------------------------------- samples
def event_lines() -> list[bytes]:
    """The 39 raw events notifyd handed to an external program, newline stripped."""
    return [line for line in data_file("cyrus/cyrus-events.jsonl").read_bytes().split(b"\n") if line]


def dlist_frames() -> list[bytes]:
    """The complete dlist frames of dlist-samples.txt (the long ones are abridged there)."""
    text = data_file("cyrus/dlist-samples.txt").read_text()
    parts = re.split(r"^## (\d+) bytes\n", text, flags=re.M)
    frames = []
    for size, body in zip(parts[1::2], parts[2::2]):
        body = body.strip()
        if "\n" in body:  # "... [N bytes omitted] ..."
            continue
        frame = ast.literal_eval(body)
        assert len(frame) == int(size)
        frames.append(frame)
    return frames


def frame_message(frame: bytes) -> bytes:
    """The event JSON inside one of dlist_frames()."""
    return frame[frame.index(b"}\r\n") + 3 :].rsplit(b" FILEPATH", 1)[0]


def datagram(json_bytes: bytes) -> bytes:
    """Spelled out from the README's example, not from our encoder."""
    return b"external\x00EVENT\x00\x00\x00\x000\x00" + json_bytes + b"\x00"


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------- broker side
# One broker key and one dealer key for these tests, the dealer on the broker's allow-list: a
# DealerProcess's home gets the dealer's key pair and the broker's public key.
_KEYS: list[Path] = []


def keys_home() -> Path:
    if not _KEYS:
        home = Path(tempfile.mkdtemp(prefix="dealer-keys-"))
        init_key(home, "broker")
        trust(home, "dealers", "test-dealer", init_key(home, "dealer")[0])
        _KEYS.append(home)
    return _KEYS[0]


def provision(home: Path) -> None:
    """The dealer's CURVE key pair and the test broker's public key, in ``home``."""
    source, target = key_dir(keys_home()), key_dir(home)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("dealer.key", "dealer.pub", "broker.pub"):
        shutil.copy2(source / name, target / name)


def dealer_curve() -> ClientCurve | None:
    """The test dealer's CURVE to a TestBroker."""
    return client_curve(
        Config.defaults(keys_home()),
        section="dealer",
        endpoint="tcp://127.0.0.1",
        component="dealer",
        server="broker",
    )


class TestBroker(StandInBroker):
    """The broker's dealer router as the spec describes it (shared with bench/ingest_bench.py),
    over CURVE with the test keys."""

    def __init__(self, port: int | None = None, acking=True):
        super().__init__(port, acking, curve=broker_curve(keys_home()))


# ---------------------------------------------------------------------------- dealer daemon
class DealerProcess:
    """``vaultctl dealer serve ...`` as a child process; ready once it says so."""

    def __init__(self, *args: str, home: Path | None = None):
        self._own_home = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="dealer-home-"))
        provision(self.home)
        self.argv = vaultctl_argv("dealer", "serve", *args, home=self.home)
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self, ready_within: float = 20) -> DealerProcess:
        self.proc = proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        wait_for(
            lambda: "dealer ready" in self.output() or proc.poll() is not None,
            ready_within,
            what="the dealer to start",
        )
        if proc.poll() is not None:
            self.stop()
            raise AssertionError(f"dealer exited {proc.returncode}:\n{self.output()}")
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        assert self.proc is not None, "the dealer was never started"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stop()

    def stop(self) -> int:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)
        return self.proc.returncode if self.proc else 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def spool_files(root: str | os.PathLike[str], sub: str = "new") -> list[Path]:
    d = Path(root) / sub
    return sorted(p for p in d.iterdir()) if d.exists() else []


def events_in(raws) -> list[str]:
    return [json.loads(r)["event"] for r in raws]


def as_user(user: str, fn) -> int:
    """Run ``fn()`` in a forked child with the uid/gid of ``user`` (e.g. cyrus, who cannot exec
    this Python under /root); return the child's exit status (0: fn returned)."""
    import pwd

    entry = pwd.getpwnam(user)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
