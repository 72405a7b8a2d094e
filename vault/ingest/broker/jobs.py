"""The broker's durable job queue (SQLite, WAL, synchronous=FULL).

A job is one event as the dealer shipped it: id (sha256 of the raw bytes), the raw bytes
(kept whatever they hold: malformed JSON is a job too, and fails with its reason), the origin
host and the ordering key (the event's mailboxID, else the mailbox named in its uri, else
"-"). States: PENDING -> BUSY -> DONE, or FAILED (the dead-letter list, with the reason,
until ``retry``). A job is BUSY from the moment a worker takes it until the committer has
recorded its entries, so at most one job per mailbox key is BUSY and the next one sees the
catalog its predecessor left. One exception: new messages (MessageNew, MessageAppend) commute
with each other (each makes its own item; MailboxModseq records nothing), so consecutive ones of a mailbox run side by side;
any other event waits for everything before it, and everything after it waits for it. A
postponed job is PENDING with a ``not_before`` time and does not hold up its mailbox (a Logout
postponed until its Login is archived must let the Login pass).

What the dealer router refuses (vault/ingest/broker/validate.py: an administrative request,
an id that is not its event's hash) is stored FAILED with a reason starting ``REFUSED``:
kept as evidence, listed with the other dead letters, and never put back by ``retry``.

The broker process owns the queue; ``vaultctl retry`` and ``vaultctl status`` open the same
file from other processes, which SQLite's locking makes safe.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vault.ingest.protocol import ADDS_MESSAGE, COMMUTING

PENDING, BUSY, DONE, FAILED = "PENDING", "BUSY", "DONE", "FAILED"
STATES = (PENDING, BUSY, DONE, FAILED)
NO_MAILBOX = "-"
# COMMUTING (vault/ingest/protocol.py): events that may overtake each other within a mailbox
_COMMUTING_SQL = "(" + ",".join(f"'{e}'" for e in COMMUTING) + ")"
_ADDS_MESSAGE_SQL = "(" + ",".join(f"'{e}'" for e in ADDS_MESSAGE) + ")"
# events whose handler records nothing, whatever they hold (Cyrus emits a MailboxModseq after
# every change, and the change's own event says what it was): DONE as they are stored, so they
# cost no dispatch, no worker and no commit (vault/ingest/handlers/mailboxes.py: modseq)
NOTHING_TO_RECORD = ("MailboxModseq",)
REFUSED = "refused on the event wire"  # the reason's start for what the dealer router refused

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    origin TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    event TEXT,
    state TEXT NOT NULL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    postponed INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    reason TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_mailbox ON jobs(mailbox, state, seq);
"""


@dataclass(frozen=True)
class Job:
    id: str
    raw: bytes
    origin: str
    mailbox: str
    event: str | None
    state: str
    worker: str | None
    attempts: int
    postponed: int
    reason: str | None
    created: float
    updated: float

    def summary(self) -> dict:
        return {
            "id": self.id,
            "event": self.event,
            "mailbox": self.mailbox,
            "state": self.state,
            "origin": self.origin,
            "attempts": self.attempts,
            "postponed": self.postponed,
            "reason": self.reason,
            "created": self.created,
            "updated": self.updated,
        }


_COLUMNS = "id, raw, origin, mailbox, event, state, worker, attempts, postponed, reason, created, updated"


def _job(row) -> Job:
    return Job(row[0], bytes(row[1]), *row[2:])


def describe(raw: bytes) -> tuple[str, str | None]:
    """(ordering key, event name) of a raw notification; never raises: a job is stored
    whatever its bytes, and the worker that reads it says what is wrong."""
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return NO_MAILBOX, None
    if not isinstance(event, dict):
        return NO_MAILBOX, None
    name = event.get("event") if isinstance(event.get("event"), str) else None
    mailbox_id = event.get("mailboxID")
    if isinstance(mailbox_id, str) and mailbox_id:
        return mailbox_id, name
    uri = event.get("uri")
    if isinstance(uri, str) and uri:
        path = unquote(urlsplit(uri).path).lstrip("/").split(";", 1)[0]
        if path:
            return path, name
    return NO_MAILBOX, name


def unsettled(path: Path | str, now: float | None = None) -> int:
    """How many jobs are still at work or due (BUSY: with a worker or the committer; PENDING
    and due), read on a connection of its own: from any thread, beside the broker's."""
    db = sqlite3.connect(str(path), timeout=60)
    try:
        (n,) = db.execute(
            "SELECT count(*) FROM jobs WHERE state='BUSY' OR (state='PENDING' AND not_before<=?)",
            (time.time() if now is None else now,),
        ).fetchone()
        return int(n)
    except sqlite3.OperationalError:  # no queue yet
        return 0
    finally:
        db.close()


class JobStore:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # Only new jobs must survive a power cut (the dealer deletes its copy on our ack):
        # add_many syncs; a lost state change merely redoes a job, which the committer skips.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.added_pending = 0  # new PENDING jobs in the last add_many (the rest: duplicates, DONE)

    @classmethod
    def from_config(cls, config) -> JobStore:
        return cls(config.path("broker", "jobs_path"))

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ the broker's side

    def add_many(
        self,
        events: list[tuple[str, bytes, str]],
        refuse: Callable[[int, str | None], str | None] | None = None,
    ) -> list[bool]:
        """Persist (id, raw, origin) events in one transaction; True for each one that is new
        (a duplicate id, a replay, is already safe and is not stored twice). Events in
        ``NOTHING_TO_RECORD`` are stored DONE; those ``refuse(position in events, event
        name)`` gives a reason for are stored FAILED with it (dead letters no worker sees)."""
        now = time.time()
        new = []
        pending = 0
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for n, (eid, raw, origin) in enumerate(events):
                mailbox, name = describe(raw)
                reason = refuse(n, name) if refuse is not None else None
                state = FAILED if reason else DONE if name in NOTHING_TO_RECORD else PENDING
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO jobs(id, raw, origin, mailbox, event, state, reason, created, updated) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (eid, raw, origin, mailbox, name, state, reason, now, now),
                )
                new.append(cur.rowcount == 1)
                pending += cur.rowcount == 1 and state == PENDING
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.added_pending = pending
        return new

    def add(self, eid: str, raw: bytes, origin: str = "") -> bool:
        return self.add_many([(eid, raw, origin)])[0]

    def dispatchable(self, limit: int, now: float | None = None) -> list[Job]:
        """The next jobs to hand out, oldest first: at most one per mailbox key, only from
        mailboxes with nothing BUSY, and each its mailbox's oldest job that is due."""
        now = time.time() if now is None else now
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs j WHERE state='PENDING' AND not_before<=:now AND ("
            # a new message: nothing but new messages BUSY or due before it in its mailbox
            f" (j.event IN {_COMMUTING_SQL} AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.mailbox=j.mailbox"
            "   AND k.seq<j.seq AND (k.state='BUSY' OR (k.state='PENDING' AND k.not_before<=:now))"
            f"   AND (k.event IS NULL OR k.event NOT IN {_COMMUTING_SQL})))"
            # anything else: nothing BUSY in its mailbox, nothing due before it, no message
            # before it still to come in (postponed or not: this may be its expunge)
            " OR (NOT EXISTS (SELECT 1 FROM jobs b WHERE b.mailbox=j.mailbox AND b.state='BUSY')"
            "  AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.mailbox=j.mailbox AND k.state='PENDING'"
            f"                  AND k.seq<j.seq AND (k.not_before<=:now OR k.event IN {_ADDS_MESSAGE_SQL})))"
            ") ORDER BY seq LIMIT :limit",
            {"now": now, "limit": limit},
        ).fetchall()
        jobs, barrier = [], set()
        for job in (_job(r) for r in rows):
            # within one answer, a non-commuting job is its mailbox's last: later ones wait for it
            if job.mailbox in barrier:
                continue
            if job.event not in COMMUTING:
                barrier.add(job.mailbox)
            jobs.append(job)
        return jobs

    def waited_on(self, job_id: str) -> bool:
        """Whether a PENDING job of the same mailbox cannot run before this one is DONE (it or
        this one does not commute): the committer then commits this one promptly."""
        row = self.db.execute(
            "SELECT 1 FROM jobs j JOIN jobs k ON k.mailbox=j.mailbox AND k.seq>j.seq AND k.state='PENDING' "
            f"WHERE j.id=? AND (j.event IS NULL OR j.event NOT IN {_COMMUTING_SQL} "
            f"OR k.event IS NULL OR k.event NOT IN {_COMMUTING_SQL}) LIMIT 1",
            (job_id,),
        ).fetchone()
        return row is not None

    def take(self, job_id: str, worker: str) -> bool:
        return self.take_many([(job_id, worker)]) == [job_id]

    def take_many(self, assignments: list[tuple[str, str]]) -> list[str]:
        """Mark (job id, worker) pairs BUSY in one transaction; the ids that were PENDING."""
        now = time.time()
        taken = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for job_id, worker in assignments:
                cur = self.db.execute(
                    "UPDATE jobs SET state='BUSY', worker=?, attempts=attempts+1, updated=? "
                    "WHERE id=? AND state='PENDING'",
                    (worker, now, job_id),
                )
                if cur.rowcount == 1:
                    taken.append(job_id)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return taken

    def done(self, job_ids: list[str]) -> None:
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "UPDATE jobs SET state='DONE', worker=NULL, reason=NULL, updated=? WHERE id=?",
            [(now, j) for j in job_ids],
        )
        self.db.execute("COMMIT")

    def fail(self, job_id: str, reason: str) -> None:
        self.db.execute(
            "UPDATE jobs SET state='FAILED', worker=NULL, reason=?, updated=? WHERE id=?",
            (reason, time.time(), job_id),
        )

    def postpone(self, job_id: str, reason: str, delay: float, max_postpones: int) -> bool:
        """Back to PENDING, due after ``delay``; FAILED instead once it has been postponed
        ``max_postpones`` times. Returns whether it is still pending."""
        row = self.db.execute("SELECT postponed FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            return False
        if row[0] + 1 >= max_postpones:
            self.fail(job_id, f"postponed {row[0] + 1} times, last: {reason}")
            return False
        now = time.time()
        self.db.execute(
            "UPDATE jobs SET state='PENDING', worker=NULL, postponed=postponed+1, reason=?, "
            "not_before=?, updated=? WHERE id=?",
            (reason, now + delay, now, job_id),
        )
        return True

    def release(self, job_ids: list[str], reason: str | None = None) -> None:
        """Back to PENDING now (a dead worker's jobs; a commit that failed)."""
        now = time.time()
        self.db.executemany(
            "UPDATE jobs SET state='PENDING', worker=NULL, reason=?, updated=? WHERE id=? AND state='BUSY'",
            [(reason, now, j) for j in job_ids],
        )

    def release_worker(
        self,
        worker: str,
        reason: str,
        taken_before: float | None = None,
        keep: Container[str] = frozenset(),
    ) -> list[str]:
        """The worker's BUSY jobs (those it took before ``taken_before``, except those in
        ``keep``: its results are being committed) back to PENDING."""
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM jobs WHERE state='BUSY' AND worker=? AND updated<?",
                (worker, float("inf") if taken_before is None else taken_before),
            )
            if r[0] not in keep
        ]
        self.release(ids, reason)
        return ids

    def recover(self) -> int:
        """At broker start: nothing is BUSY (no worker and no committer survived us)."""
        cur = self.db.execute(
            "UPDATE jobs SET state='PENDING', worker=NULL, updated=? WHERE state='BUSY'", (time.time(),)
        )
        return cur.rowcount

    def forget_done(self, older_than: float) -> int:
        """Drop DONE jobs last touched before ``older_than`` (their entries are in the ledger)."""
        cur = self.db.execute("DELETE FROM jobs WHERE state='DONE' AND updated<?", (older_than,))
        return cur.rowcount

    # ------------------------------------------------------------ anyone's side

    def get(self, job_id: str) -> Job | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def state_of(self, job_id: str) -> tuple[str, str | None] | None:
        """(state, worker) of a job, None if there is none."""
        row = self.db.execute("SELECT state, worker FROM jobs WHERE id=?", (job_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def find(self, prefix: str) -> list[Job]:
        """Jobs whose id starts with ``prefix`` (operators type short ids)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE id >= ? AND id < ? ORDER BY seq", (prefix, prefix + "\uffff")
        ).fetchall()
        return [_job(r) for r in rows]

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[Job]:
        sql = f"SELECT {_COLUMNS} FROM jobs"
        args: list = []
        if state:
            sql += " WHERE state=?"
            args.append(state)
        sql += " ORDER BY seq"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [_job(r) for r in self.db.execute(sql, args)]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        out.update(dict(self.db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()))
        return out

    def retry(self, job_ids: list[str] | None = None) -> int:
        """FAILED jobs (these, or all) back to PENDING, due now, their postpone count reset;
        never one the event wire refused (an administrative request stays a dead letter)."""
        now = time.time()
        sql = (
            "UPDATE jobs SET state='PENDING', worker=NULL, postponed=0, not_before=0, "
            "reason=NULL, updated=? WHERE state='FAILED' AND substr(coalesce(reason, ''), 1, ?) != ?"
        )
        args = (now, len(REFUSED), REFUSED)
        if job_ids is None:
            return self.db.execute(sql, args).rowcount
        return sum(self.db.execute(sql + " AND id=?", (*args, j)).rowcount for j in job_ids)
