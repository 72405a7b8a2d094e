"""Hop records on disk (SQLite beside the vault), imported idempotently and resumably.

A line imported twice is stored once (the hop's key is a hash of host, time, program and the
raw line). Each file's inode and the offset read so far are remembered, so a second import
of a growing log reads only what is new, and a rotated or truncated file is read again from
the start (safe: duplicates are ignored). ``.gz`` files are read whole each time (they do not
grow). ``follow`` tails a live log across rotations.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vault.store.sqlite import connect, writable
from vault.trace.maillog import Hop, LineParser, ParseStats

SCHEMA = """
CREATE TABLE IF NOT EXISTS hops (
    key BLOB NOT NULL UNIQUE, host TEXT NOT NULL, time TEXT NOT NULL, program TEXT NOT NULL,
    queue_id TEXT, message_id TEXT, sender TEXT, recipient TEXT, relay TEXT, status TEXT, dsn TEXT,
    delay REAL, size INTEGER, session_id TEXT, next_queue_id TEXT, detail TEXT, raw TEXT NOT NULL
);  -- rowid: the order lines were read in, which orders hops logged in the same second
CREATE INDEX IF NOT EXISTS hops_qid ON hops(queue_id, host);
CREATE INDEX IF NOT EXISTS hops_mid ON hops(message_id);
CREATE INDEX IF NOT EXISTS hops_next ON hops(next_queue_id);
CREATE INDEX IF NOT EXISTS hops_rcpt ON hops(recipient);
CREATE INDEX IF NOT EXISTS hops_sender ON hops(sender);
CREATE INDEX IF NOT EXISTS hops_session ON hops(session_id);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, inode INTEGER, offset INTEGER NOT NULL, updated REAL);
"""
COLUMNS = (
    "host",
    "time",
    "program",
    "queue_id",
    "message_id",
    "sender",
    "recipient",
    "relay",
    "status",
    "dsn",
    "delay",
    "size",
    "session_id",
    "next_queue_id",
    "detail",
    "raw",
)
BATCH = 5000


@dataclass
class ImportReport:
    files: list[str] = field(default_factory=list)
    stats: ParseStats = field(default_factory=ParseStats)
    stored: int = 0  # new hops (duplicates of earlier imports are not counted)

    def to_json(self) -> dict:
        s = self.stats
        return {
            "files": self.files,
            "lines": s.lines,
            "hops": s.hops,
            "stored": self.stored,
            "ignored": sum(s.ignored.values()),
            "unparsed": sum(s.unparsed.values()),
            "ignored_by_reason": dict(s.ignored.most_common()),
            "unparsed_by_reason": dict(s.unparsed.most_common()),
        }


def _row(hop: Hop) -> tuple:
    key = hashlib.sha1(
        f"{hop.host}\0{hop.time}\0{hop.program}\0{hop.raw}".encode("utf-8", "replace")
    ).digest()
    return (
        key,
        hop.host,
        hop.time,
        hop.program,
        hop.queue_id,
        hop.message_id,
        hop.from_,
        hop.to,
        hop.relay,
        hop.status,
        hop.dsn,
        hop.delay,
        hop.size,
        hop.session_id,
        hop.next_queue_id,
        hop.detail,
        hop.raw,
    )


def hop_of(row) -> Hop:
    d = dict(zip(("seq", *COLUMNS), row))
    d["from_"], d["to"] = d.pop("sender"), d.pop("recipient")
    return Hop(**d)


class MaillogStore:
    def __init__(self, path: Path | str, *, read_only: bool = False):
        """``read_only``: a home that cannot be written (vault/store/sqlite.py) is read as it is;
        with no maillog.sqlite there, an empty store in memory answers."""
        path = Path(path)
        if read_only:
            self.db = (
                connect(path, read_only=True, timeout=60) if path.exists() else sqlite3.connect(":memory:")
            )
            if not path.exists():
                self.db.executescript(SCHEMA)
            return
        self.db = sqlite3.connect(str(path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # the hop indexes take random keys (hashes, queue IDs): with SQLite's 2 MB default cache
        # a million-line import spends most of its time re-reading index pages (63 s -> 43 s)
        self.db.execute("PRAGMA cache_size=-262144")
        self.db.executescript(SCHEMA)

    @classmethod
    def from_config(cls, config, *, writing: bool = False) -> MaillogStore:
        """The home's store; read-only where the home cannot be written, unless ``writing``
        (an import), which is refused there (EROFS)."""
        path = config.path("maillog")
        read_only = not writable(path.parent)
        if read_only and writing:
            raise OSError(
                errno.EROFS,
                "cannot be written here: mail logs are imported where the home is writable",
                str(path),
            )
        return cls(path, read_only=read_only)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ writing

    def store(self, hops: Iterable[Hop]) -> int:
        before = self.db.total_changes
        self.db.executemany(
            f"INSERT OR IGNORE INTO hops(key, {', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
            [_row(h) for h in hops],
        )
        return self.db.total_changes - before

    def import_file(
        self,
        path: Path | str,
        *,
        host: str | None = None,
        zone=None,
        progress: Callable[[int], None] | None = None,
        report: ImportReport | None = None,
    ) -> ImportReport:
        """Read what is new in ``path`` (all of it the first time, or after rotation)."""
        path = Path(path)
        report = report or ImportReport()
        st = path.stat()
        reference = datetime.fromtimestamp(st.st_mtime, UTC)
        parser = LineParser(reference=reference, zone=zone, host=host)
        gz = path.suffix == ".gz"
        start = 0 if gz else self._resume_offset(path, st)
        opener = gzip.open if gz else open
        with opener(path, "rb") as f:
            if start:
                f.seek(start)
            offset = self._read(f, parser, report, progress, start)
        if not gz:
            self._remember(path, st.st_ino, offset)
        self.db.commit()
        report.files.append(str(path))
        report.stats.merge(parser.stats)
        return report

    def _read(self, f, parser: LineParser, report: ImportReport, progress, offset: int) -> int:
        batch: list[Hop] = []
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a line still being written: next time
            offset += len(raw)
            hop = parser.parse(raw.decode("utf-8", "replace"))
            if hop is not None:
                batch.append(hop)
            if len(batch) >= BATCH:
                report.stored += self.store(batch)
                batch.clear()
            if progress and parser.stats.lines % 10000 == 0:
                progress(10000)
        report.stored += self.store(batch)
        return offset

    def _resume_offset(self, path: Path, st: os.stat_result) -> int:
        row = self.db.execute(
            "SELECT inode, offset FROM files WHERE path=?", (str(path.resolve()),)
        ).fetchone()
        if row is None or row[0] != st.st_ino or row[1] > st.st_size:
            return 0  # new, rotated (another inode) or truncated: from the start
        return row[1]

    def _remember(self, path: Path, inode: int, offset: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files(path, inode, offset, updated) VALUES (?,?,?,?)",
            (str(path.resolve()), inode, offset, time.time()),
        )

    def follow(
        self,
        path: Path | str,
        *,
        host: str | None = None,
        zone=None,
        interval: float = 0.5,
        stop: Callable[[], bool] = lambda: False,
        on_batch: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        """Import what the log gains until ``stop()``; a rotated file is picked up from its start."""
        total = ImportReport()
        while not stop():
            report = ImportReport()
            try:
                self.import_file(path, host=host, zone=zone, report=report)
            except FileNotFoundError:
                pass  # between rotation and re-creation
            if report.stats.lines:
                total.stats.merge(report.stats)
                total.stored += report.stored
                if on_batch:
                    on_batch(report)
            time.sleep(interval)
        return total

    # ------------------------------------------------------------ reading

    def _select(self, where: str, args: tuple) -> list[Hop]:
        rows = self.db.execute(
            f"SELECT rowid, {', '.join(COLUMNS)} FROM hops WHERE {where} ORDER BY time, rowid", args
        )
        return [hop_of(r) for r in rows]

    def by_queue_id(self, queue_id: str, host: str | None = None) -> list[Hop]:
        if host is None:
            return self._select("queue_id=?", (queue_id,))
        return self._select("queue_id=? AND host=?", (queue_id, host))

    def by_next_queue_id(self, queue_id: str) -> list[Hop]:
        """Hops that handed a message on to this queue ID (upstream of it)."""
        return self._select("next_queue_id=?", (queue_id,))

    def by_message_id(self, message_id: str) -> list[Hop]:
        return self._select("message_id=?", (message_id,))

    def by_address(self, address: str, since: str | None = None, until: str | None = None) -> list[Hop]:
        where, args = "(recipient=? COLLATE NOCASE OR sender=? COLLATE NOCASE)", [address, address]
        if since:
            where += " AND time>=?"
            args.append(since)
        if until:
            where += " AND time<=?"
            args.append(until)
        return self._select(where, tuple(args))

    def by_session(self, session_id: str) -> list[Hop]:
        return self._select("session_id=?", (session_id,))

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM hops").fetchone()[0]
