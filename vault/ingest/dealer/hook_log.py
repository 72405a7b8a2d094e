"""Events from the external hook: one append-only log, turned into spool files by the shipper.

notifyd runs the hook once per event, serially, and Cyrus's delivery rate pays for every
millisecond of it. Measured next to a busy Cyrus (bench/ingest_bench.py), creating a file per
event cost far more than appending to one file: each create, rename or truncate queues behind
Cyrus's own journal commits. So the hook (vault/ingest/dealer.py) is a single ``exec dd``
appending stdin (the event's JSON plus the newline notifyd adds; Cyrus's JSON never holds a raw
newline) to ``SPOOL/hook.log``, with ``conv=fsync``.

:meth:`HookLog.collect`, run by the shipper, renames ``hook.log`` to ``hook-<time_ns>.log`` (the
next hook run creates a fresh one), spools every complete line of the rotated logs durably (but
the events the vault records nothing for: spool.DROPPED_EVENTS), and
deletes a rotated log once it is fully spooled and untouched for ``grace`` seconds: a hook that
opened the log just before the rename may still be appending to it. A partial last line that
stays partial that long is quarantined. After a restart, rotated logs still present are read
again from the start; their events may be spooled twice, which the broker deduplicates.
"""

from __future__ import annotations

import os
import time

from vault.ingest.dealer.spool import EventSpool, dropped

LOG_NAME = "hook.log"
ROTATED_PREFIX = "hook-"
ROTATED_SUFFIX = ".log"
GRACE_SECONDS = 2.0
CHUNK = 4 * 1024 * 1024


class HookLog:
    def __init__(self, spool: EventSpool, grace: float = GRACE_SECONDS):
        self.spool = spool
        self.grace = grace
        self.path = spool.root / LOG_NAME
        self._done: dict[str, int] = {}  # rotated log -> bytes already spooled

    def collect(self) -> tuple[list[str], list[str]]:
        """Rotate and spool; returns (spooled names, quarantined names)."""
        try:
            if self.path.stat().st_size:
                os.rename(self.path, self.spool.root / f"{ROTATED_PREFIX}{time.time_ns()}{ROTATED_SUFFIX}")
        except FileNotFoundError:
            pass
        spooled: list[str] = []
        quarantined: list[str] = []
        for name in sorted(os.listdir(self.spool.root)):
            if name.startswith(ROTATED_PREFIX) and name.endswith(ROTATED_SUFFIX):
                self._collect_one(name, spooled, quarantined)
        return spooled, quarantined

    def _collect_one(self, name: str, spooled: list[str], quarantined: list[str]) -> None:
        path = self.spool.root / name
        done = self._done.get(name, 0)
        with open(path, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            f.seek(done)
            carry = b""
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                data = carry + chunk
                end = data.rfind(b"\n") + 1
                # events the vault records nothing for are dropped here (spool.DROPPED_EVENTS)
                lines = [line for line in data[:end].split(b"\n") if line.strip() and not dropped(line)]
                if lines:
                    spooled += self.spool.write_many(lines)
                done += end
                carry = data[end:]
        self._done[name] = done
        st = os.stat(path)
        if st.st_size != done + len(carry) or time.time() - max(mtime, st.st_mtime) < self.grace:
            return  # a hook may still be appending
        if carry:
            quarantined.append(
                self.spool.quarantine(
                    carry,
                    f"{path}: the last {len(carry)} bytes are not a whole event "
                    "(no final newline: the hook stopped mid-write)",
                )
            )
        path.unlink()
        del self._done[name]
