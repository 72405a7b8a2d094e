"""The dealer's durable local spool: one file per event, written before anyone is told "got it"
(in socket and stream mode the listeners' journal is the first durable copy, and only events the
broker has not acked within a grace period get a file here: listeners.JournaledSpool).

Layout (docs/architecture.md 4.2)::

    SPOOL/tmp/   files being written
    SPOOL/new/   complete, durable events: <time_ns>.<pid>.<counter>, sorting by arrival
    SPOOL/bad/   things that are not even events, each with <name>.reason beside it
    SPOOL/journal, SPOOL/hook.log, SPOOL/hook-*.log, SPOOL/shipper.lock: see journal.py,
                 hook_log.py and shipper.py

A file holds the notification's JSON exactly as Cyrus sent it, without the trailing NUL or
newline. Writers write tmp/<name>, fsync, rename to new/<name> and fsync new/ (or, with
``durable=False``, leave the fsyncs to a later :meth:`EventSpool.sync` because the event is safe
elsewhere meanwhile: the listeners' write-ahead journal).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from vault.durable import sync_path

REASON_SUFFIX = ".reason"
# A tmp/ file untouched this long belongs to a writer that died (a live one needs milliseconds).
STALE_SECONDS = 300.0
FILE_MODE = 0o640

_counter = itertools.count()


class EventSpoolError(OSError):
    """The spool cannot be used (missing, unwritable, disk full); the message names the path."""


# Events the vault records nothing for, which the dealer answers and drops: no journal write,
# no fsync, no spool file, nothing shipped. Cyrus 3.6 emits a MailboxModseq at every mailbox
# commit (one per delivery, besides its MessageNew), and no setting turns it off alone: it comes
# with the ``mailbox`` group, i.e. MailboxCreate, MailboxDelete, MailboxRename (imap/mboxevent.c:
# MAILBOX_EVENTS). Its handler records nothing (the broker's jobs.NOTHING_TO_RECORD, of which
# this is a part, kept so by tests/ingest/dealer/test_dropped_events.py).
DROPPED_EVENTS = ("MailboxModseq",)
# Cyrus writes its JSON compact with "event" first (mboxevent.c: json_formatter); anything
# spelt otherwise is kept, which is always safe.
_DROPPED_PREFIXES = tuple(b'{"event":"' + name.encode() + b'"' for name in DROPPED_EVENTS)


def dropped(raw: bytes) -> bool:
    """True for the bytes of an event in ``DROPPED_EVENTS``, as Cyrus writes them."""
    return raw.startswith(_DROPPED_PREFIXES)


def normalise(raw: bytes) -> bytes:
    """The event bytes as the spool keeps them: without the transport's trailing NUL/newline."""
    return raw.rstrip(b"\r\n\0")


def event_id(raw: bytes) -> str:
    """The id the broker deduplicates on (``raw`` as stored, i.e. normalised)."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Quarantined:
    name: str
    reason: str
    size: int
    time_ns: int


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _looks_like_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


class EventSpool:
    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.new = self.root / "new"
        self.bad = self.root / "bad"
        try:
            for d in (self.tmp, self.new, self.bad):
                if create:
                    d.mkdir(parents=True, exist_ok=True)
                elif not d.is_dir():
                    raise EventSpoolError(f"{d}: not a spool directory (missing)")
        except OSError as e:
            if isinstance(e, EventSpoolError):
                raise
            raise EventSpoolError(f"cannot create spool {self.root}: {e}") from e

    def __repr__(self) -> str:
        return f"EventSpool({str(self.root)!r})"

    def grant(self, user: str) -> None:
        """Make the spool writable by ``user`` (the hook runs as ``cyrus``): owner of every
        spool directory, group its primary group, no access for others."""
        import pwd

        entry = pwd.getpwnam(user)
        for d in (self.root, self.tmp, self.new, self.bad):
            os.chown(d, entry.pw_uid, entry.pw_gid)
            d.chmod(0o750)

    @staticmethod
    def new_name() -> str:
        return f"{time.time_ns()}.{os.getpid()}.{next(_counter)}"

    # ------------------------------------------------------------------ writing
    def write(self, raw: bytes) -> str:
        """Store one event durably; return its name in new/."""
        return self.write_many([raw])[0]

    def write_many(
        self,
        raws: list[bytes],
        fsync_pool: Executor | None = None,
        durable: bool = True,
        names: list[str] | None = None,
    ) -> list[str]:
        """Store events with one directory fsync for the lot (group commit); the file fsyncs
        run on ``fsync_pool`` when given, so the filesystem commits them together. With
        ``durable=False`` nothing is fsynced (the caller has the events safe elsewhere and
        calls :meth:`sync` later). ``names`` (from :meth:`new_name`) fixes their names, e.g.
        to their arrival time."""
        wanted = list(names) if names is not None else [self.new_name() for _ in raws]
        names = []
        fds: list[int] = []
        try:
            for raw, name in zip(raws, wanted):
                fd = os.open(self.tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
                names.append(name)
                fds.append(fd)
                data = memoryview(normalise(raw))
                while data:
                    data = data[os.write(fd, data) :]
            pending, fds = fds, []
            if not durable:
                for fd in pending:
                    os.close(fd)
            elif fsync_pool is not None and len(pending) > 1:
                list(fsync_pool.map(_fsync_close, pending))
            else:
                for fd in pending:
                    _fsync_close(fd)
            for name in names:
                os.rename(self.tmp / name, self.new / name)
            if durable:
                sync_path(self.new)
        except OSError as e:
            for fd in fds:
                os.close(fd)
            for name in names:
                (self.tmp / name).unlink(missing_ok=True)
            raise EventSpoolError(f"cannot write to spool {self.root}: {e}") from e
        return names

    def sync(self, names: list[str]) -> None:
        """Make files written with ``durable=False`` durable (those already shipped and removed
        need nothing)."""
        try:
            for name in names:
                try:
                    fd = os.open(self.new / name, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                _fsync_close(fd)
            sync_path(self.new)
        except OSError as e:
            raise EventSpoolError(f"cannot sync spool {self.root}: {e}") from e

    def quarantine(self, raw: bytes, reason: str) -> str:
        """Keep bytes that are not an event in bad/, with the reason beside them."""
        name = self.new_name()
        try:
            for path, data in ((self.bad / name, raw), (self.bad / (name + REASON_SUFFIX), reason.encode())):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
                try:
                    os.write(fd, data)
                finally:
                    _fsync_close(fd)
            sync_path(self.bad)
        except OSError as e:
            raise EventSpoolError(f"cannot quarantine in {self.bad}: {e}") from e
        return name

    # ------------------------------------------------------------------ reading
    def pending(self) -> list[str]:
        """Names in new/, oldest first."""
        return sorted(e.name for e in os.scandir(self.new) if not e.name.startswith("."))

    def read(self, name: str) -> bytes:
        """The event bytes of new/``name`` (FileNotFoundError once removed)."""
        with open(self.new / name, "rb") as f:
            return normalise(f.read())

    def remove(self, name: str) -> None:
        # No fsync: a removal lost in a crash only means the broker sees a duplicate it ignores.
        (self.new / name).unlink(missing_ok=True)

    def promote(self, stale_after: float = STALE_SECONDS) -> tuple[list[str], list[str]]:
        """Deal with files a writer left in tmp/ when it died: into new/ if they hold a whole
        JSON value, else into quarantine. Returns (promoted names, quarantined names)."""
        promoted, quarantined = [], []
        now = time.time_ns()
        for entry in os.scandir(self.tmp):
            try:
                st = entry.stat()
                if now - st.st_mtime_ns <= stale_after * 1e9:
                    continue  # still being written
                with open(entry.path, "rb") as f:
                    raw = normalise(f.read())
                if raw and _looks_like_json(raw):
                    name = entry.name if not (self.new / entry.name).exists() else self.new_name()
                    os.rename(entry.path, self.new / name)
                    promoted.append(name)
                else:
                    quarantined.append(
                        self.quarantine(
                            raw,
                            f"left incomplete in {self.tmp} as {entry.name} by a writer that stopped "
                            f"({len(raw)} bytes, last written {st.st_mtime:.0f})",
                        )
                    )
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue  # its writer finished after all
        if promoted:
            sync_path(self.new)
        return promoted, quarantined

    # ------------------------------------------------------------------ inspection
    def quarantined(self) -> list[Quarantined]:
        out = []
        for entry in sorted(os.scandir(self.bad), key=lambda e: e.name):
            if entry.name.endswith(REASON_SUFFIX):
                continue
            try:
                reason = (self.bad / (entry.name + REASON_SUFFIX)).read_text(errors="replace")
            except FileNotFoundError:
                reason = "(no reason recorded)"
            st = entry.stat()
            out.append(Quarantined(entry.name, reason, st.st_size, st.st_mtime_ns))
        return out

    def stats(self) -> dict:
        def count(d: Path, skip_reason: bool = False) -> int:
            return sum(1 for e in os.scandir(d) if not (skip_reason and e.name.endswith(REASON_SUFFIX)))

        return {"pending": count(self.new), "in_tmp": count(self.tmp), "quarantined": count(self.bad, True)}


def spool_status(root: str | os.PathLike) -> dict:
    """What ``vaultctl status`` shows about a dealer spool: counts and each quarantined item's
    reason (empty counts when the spool does not exist yet)."""
    try:
        spool = EventSpool(root, create=False)
    except EventSpoolError:
        return {"spool": str(root), "exists": False}
    return {
        "spool": str(root),
        "exists": True,
        **spool.stats(),
        "quarantine": [{"name": q.name, "reason": q.reason, "size": q.size} for q in spool.quarantined()],
    }
