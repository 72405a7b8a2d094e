"""The catalog: SQLite state derived from the ledger, for point-in-time questions (docs/architecture.md 1.1, 4.1).

Nothing here is a source of truth. ``apply`` folds ledger entries into tables; a catalog
remembers the last sequence number it applied, so it can catch up after a crash between
a ledger commit and the catalog update, and ``vaultctl rebuild`` can throw it away and
replay the ledger from 1.

Entry data fields the catalog reads, per kind (others are kept only in the item log):
  folder.created   item=mailboxID  data: name, uidvalidity
  folder.renamed   item=mailboxID  data: name (new), old
  folder.deleted   item=mailboxID
  folder.acl       item=mailboxID  data: acl
  folder.metadata  item=mailboxID  data: metadata
  message.appended/.copied/.moved  item=ItemId  data: blob, size, internal_date, flags,
                   and optionally origin, key (source identity), message_id
  message.expunged item=ItemId
  flags.set / flags.cleared  item=ItemId  data: flags
  retention.purged item=ItemId
  session.login    item=session:<id>  data: user     (session.logout closes it)
  hold.placed / hold.released  data: the hold (vault.policy.holds.Hold.to_data())
  erasure.requested / hold.release_requested  item=request id  data: what it covers
                   (a pending four-eyes request, vault/policy/approval.py)
  erasure.withdrawn / hold.release_withdrawn  item=request id  (closes it: withdrawn)
  erasure.certified / hold.released with data.request  (closes that request: approved)
Any entry whose data has "event" (the live-ingest event id) marks that event as recorded.

Names from the file system (folder names, an item's origin and source key) that are not UTF-8
are strings with surrogate escapes (vault/model.py); SQLite's text is UTF-8, so such a name is
stored as a BLOB of its bytes (``_sql``) and read back as the same string (``_named``). A BLOB
never equals a TEXT, so the two cannot be confused, and a valid name is TEXT as it always was.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from vault.entries import CONTENT_KINDS, Kind
from vault.model import ItemId, cyrus_folder_name, is_utf8
from vault.store.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    mailbox_id TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT,
    acl TEXT,
    metadata TEXT
);
CREATE TABLE IF NOT EXISTS folder_names (
    mailbox_id TEXT NOT NULL,
    name TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS folder_names_name ON folder_names(name);
CREATE INDEX IF NOT EXISTS folder_names_mailbox ON folder_names(mailbox_id);
CREATE TABLE IF NOT EXISTS items (
    item TEXT PRIMARY KEY,
    mailbox_id TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    internal_date TEXT,
    appended_at TEXT NOT NULL,
    appended_seq INTEGER NOT NULL,
    expunged_at TEXT,
    expunged_seq INTEGER,
    purged_at TEXT,
    origin TEXT,
    source_key TEXT,
    message_id TEXT
);
CREATE INDEX IF NOT EXISTS items_mailbox ON items(mailbox_id, appended_at);
CREATE INDEX IF NOT EXISTS items_uid ON items(mailbox_id, uid);
CREATE INDEX IF NOT EXISTS items_blob ON items(blob);
CREATE INDEX IF NOT EXISTS items_message_id ON items(message_id);
CREATE INDEX IF NOT EXISTS items_origin ON items(mailbox_id, origin, source_key);
CREATE TABLE IF NOT EXISTS flag_history (
    item TEXT NOT NULL,
    time TEXT NOT NULL,
    seq INTEGER NOT NULL,
    flags TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flag_history_item ON flag_history(item, time, seq);
CREATE TABLE IF NOT EXISTS item_log (
    mailbox_id TEXT,
    item TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS item_log_item ON item_log(item, seq);
CREATE INDEX IF NOT EXISTS item_log_mailbox ON item_log(mailbox_id, seq);
CREATE TABLE IF NOT EXISTS events (event TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_seq ON events(seq);
CREATE TABLE IF NOT EXISTS holds (matter TEXT PRIMARY KEY, data TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    actor TEXT,
    requested_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    closed_by TEXT,
    closed_at TEXT,
    closed_seq INTEGER
);
-- how each purged item went (retention.purged): by a retention rule or by an erasure request
CREATE TABLE IF NOT EXISTS purges (
    item TEXT PRIMARY KEY,
    mailbox_id TEXT NOT NULL,
    how TEXT NOT NULL,
    rule TEXT,
    request TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS purges_mailbox ON purges(mailbox_id);
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY,
    user TEXT,
    login_at TEXT NOT NULL,
    login_seq INTEGER NOT NULL,
    logout_at TEXT,
    logout_seq INTEGER
);
"""


# Inserts that apply() collects and writes with executemany; any other statement flushes them first.
_LOG_SQL = "INSERT INTO item_log(mailbox_id, item, seq) VALUES (?,?,?)"
_EVENT_SQL = "INSERT OR IGNORE INTO events(event, seq) VALUES (?,?)"
_ITEM_SQL = (
    "INSERT OR REPLACE INTO items(item, mailbox_id, uidvalidity, uid, blob, size,"
    " internal_date, appended_at, appended_seq, origin, source_key, message_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_FLAGS_SQL = "INSERT INTO flag_history(item, time, seq, flags) VALUES (?,?,?,?)"
_BATCHED = (_LOG_SQL, _EVENT_SQL, _ITEM_SQL, _FLAGS_SQL)
_REQUEST_KINDS = frozenset({Kind.ERASURE_REQUESTED, Kind.RELEASE_REQUESTED})
_WITHDRAWAL_KINDS = frozenset({Kind.ERASURE_WITHDRAWN, Kind.RELEASE_WITHDRAWN})


RETENTION, ERASURE = "retention", "erasure"  # how a purged item went
_REQUEST_IN_REASON = re.compile(r"^erasure request (\S+)")


def purge_cause(data: dict) -> tuple[str, str | None, str | None]:
    """(how, rule, request) of a ``retention.purged`` entry: ``how`` is RETENTION (a sweep, by
    ``rule``) or ERASURE (by erasure ``request``). Entries written before ``how`` was recorded
    say it in their reason (``erasure request er-... for ...``)."""
    request = data.get("request")
    how = data.get("how")
    if how not in (RETENTION, ERASURE):
        found = _REQUEST_IN_REASON.match(str(data.get("reason") or ""))
        how = ERASURE if found and not data.get("rule") else RETENTION
        request = request or (found.group(1) if found else None)
    return how, data.get("rule"), request


class CatalogError(Exception):
    pass


# the tables whose row counts are recorded (``damage``) and every table with its key (``differences``)
COUNTED = ("folders", "folder_names", "items", "flag_history")
KEYS = {
    "folders": ("mailbox_id",),
    "folder_names": ("mailbox_id", "seq"),
    "items": ("item",),
    "flag_history": ("item", "seq"),
    "item_log": ("item", "seq"),
    "events": ("event",),
    "holds": ("matter",),
    "requests": ("request",),
    "sessions": ("session",),
}


def _json(value) -> str:
    """Entry data as the catalog stores it: keys sorted, so a row written as the entry was
    recorded equals the row a replay of the stored (canonical) entry writes."""
    return json.dumps(value, sort_keys=True)


def _key_text(cols: str, key: tuple) -> str:
    values = [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in key]
    return (
        str(values[0])
        if len(values) == 1
        else ", ".join(f"{c.strip()}={v}" for c, v in zip(cols.split(","), values))
    )


_NAME_COLUMNS = ("name", "origin", "source_key")


def _sql(name: str | None) -> str | bytes | None:
    """A name as the catalog stores it: TEXT, or the BLOB of its bytes when it is not UTF-8."""
    if name is None or is_utf8(name):
        return name
    return name.encode("utf-8", "surrogateescape")


def _name(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _named(row) -> dict:
    """A row as a dict, its name columns back as the strings they were recorded as."""
    out = dict(row)
    for column in _NAME_COLUMNS:
        if isinstance(out.get(column), bytes):
            out[column] = _name(out[column])
    return out


def _mailbox_of(item: str | None) -> str | None:
    if item is None:
        return None
    try:
        return ItemId.parse(item).mailbox_id
    except ValueError:
        return item  # folder entries name the mailboxID itself


class Catalog:
    def __init__(self, path: Path | str, *, read_only: bool = False):
        """``read_only``: never write the file (a read-only home, vault/store/sqlite.py); a
        reader that must catch up then goes on with a copy in memory (``into_memory``)."""
        self.path = Path(path)
        self.read_only = read_only
        self.db = connect(self.path, read_only=read_only, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        if not read_only:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)

    @classmethod
    def from_config(cls, config, *, read_only: bool = False) -> Catalog:
        return cls(config.path("catalog"), read_only=read_only)

    @classmethod
    def empty(cls) -> Catalog:
        """A catalog in memory, for a reader whose home has none it can read."""
        return cls(":memory:")

    def into_memory(self) -> None:
        """Go on with a private copy in memory of what the file holds: a reader that cannot
        write the file (read-only, full) still catches up with the ledger, for itself alone."""
        memory = sqlite3.connect(":memory:", isolation_level=None)
        self.db.backup(memory)
        self.db.close()
        memory.row_factory = sqlite3.Row
        memory.executescript(SCHEMA)
        self.db, self.read_only = memory, False

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ applying the ledger

    @property
    def applied_seq(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='applied_seq'").fetchone()
        return int(row[0]) if row else 0

    def apply(self, entries: Iterable) -> int:
        """Fold committed ledger entries in, in one transaction; entries already applied
        are ignored, so two processes catching up at once cannot apply one twice."""
        count = 0
        self._rows: dict[str, list[tuple]] = {sql: [] for sql in _BATCHED}
        self.db.execute("BEGIN IMMEDIATE")
        try:
            applied = self.applied_seq
            before = self.row_counts()
            for entry in entries:
                if entry.seq <= applied:
                    continue
                if entry.seq != applied + 1:
                    raise CatalogError(
                        f"ledger entry {entry.seq} follows {applied}: catalog out of step, "
                        "run 'vaultctl rebuild'"
                    )
                self._apply_one(entry)
                applied = entry.seq
                count += 1
            self._flush_rows()
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('applied_seq', ?)", (str(applied),)
            )
            if count:
                self._count_rows(before)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # a COMMIT that failed (a full disk) has rolled back already
                self.db.execute("ROLLBACK")
            raise
        return count

    def row_counts(self) -> dict[str, int]:
        """Rows in each table a restore or a search reads (SQLite counts a b-tree's entries:
        ~1 ms per 100k rows)."""
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}

    def _recorded_counts(self) -> dict[str, int] | None:
        row = self.db.execute("SELECT value FROM meta WHERE key='rows'").fetchone()
        return json.loads(row[0]) if row else None

    def _count_rows(self, before: dict[str, int]) -> None:
        """Record how many rows each counted table should have: what was recorded, plus what
        this apply added (never the tables' own counts, which would take in rows lost since)."""
        after = self.row_counts()
        recorded = self._recorded_counts() or before  # a catalog from before counts: from now
        expected = {t: recorded.get(t, before[t]) + after[t] - before[t] for t in COUNTED}
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('rows', ?)", (json.dumps(expected),))

    def damage(self) -> list[str]:
        """What a cheap look finds wrong: tables holding another number of rows than the
        ledger's entries put there (rows deleted or added behind the catalog's back)."""
        recorded = self._recorded_counts()
        if recorded is None:
            return []
        have = self.row_counts()
        return [
            f"catalog table {t} has {have[t]} row(s), the ledger's entries made {recorded[t]}"
            for t in COUNTED
            if t in recorded and have[t] != recorded[t]
        ]

    def differences(self, fresh: Catalog) -> list[tuple[str, str, str]]:
        """Every row that differs from ``fresh`` (a replay of the same ledger entries, in a
        file): ``(table, key, what)`` with what in missing, extra, differs."""
        out: list[tuple[str, str, str]] = []
        self.db.execute("ATTACH DATABASE ? AS fresh", (str(fresh.path),))
        try:
            for table, key in KEYS.items():
                cols = ", ".join(key)
                mine = {tuple(r[: len(key)]) for r in self._except(table, key, "main", "fresh")}
                theirs = {tuple(r[: len(key)]) for r in self._except(table, key, "fresh", "main")}
                for k in sorted(theirs - mine, key=repr):
                    out.append((table, _key_text(cols, k), "missing"))
                for k in sorted(mine - theirs, key=repr):
                    out.append((table, _key_text(cols, k), "extra"))
                for k in sorted(mine & theirs, key=repr):
                    if self._row(table, key, k, "main") != self._row(table, key, k, "fresh"):
                        out.append((table, _key_text(cols, k), "differs"))
        finally:
            self.db.execute("DETACH DATABASE fresh")
        return out

    def _row(self, table: str, key: tuple[str, ...], values: tuple, db: str) -> list:
        """One row, its JSON values parsed (a catalog from before ``_json`` kept their keys in
        the order they were recorded: the same data)."""
        where = " AND ".join(f"{c}=?" for c in key)
        row = self.db.execute(f"SELECT * FROM {db}.{table} WHERE {where}", values).fetchone()
        out = []
        for v in row or ():
            if isinstance(v, str) and v[:1] in "{[":
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            out.append(v)
        return out

    def _except(self, table: str, key: tuple[str, ...], a: str, b: str):
        cols = ", ".join(key)
        return self.db.execute(
            f"SELECT {cols}, * FROM (SELECT * FROM {a}.{table} EXCEPT SELECT * FROM {b}.{table})"
        )

    def catch_up(self, ledger) -> int:
        """Apply whatever the ledger committed that this catalog has not seen."""
        if self.applied_seq >= ledger.size:
            return 0
        return self.apply(ledger.entries(self.applied_seq + 1))

    def _flush_rows(self) -> None:
        for sql, rows in self._rows.items():
            if rows:
                self.db.executemany(sql, rows)
                rows.clear()

    def _execute(self, sql: str, args: tuple = ()):
        """A statement that may read or update rows still waiting in the batch."""
        self._flush_rows()
        return self.db.execute(sql, args)

    def _apply_one(self, e) -> None:

        data = e.data or {}
        rows = self._rows
        if e.item is not None:
            rows[_LOG_SQL].append((_mailbox_of(e.item), e.item, e.seq))
        if "event" in data:
            rows[_EVENT_SQL].append((data["event"], e.seq))
        kind = e.kind
        if kind == Kind.FOLDER_CREATED:
            self._execute(
                "INSERT OR IGNORE INTO folders(mailbox_id, uidvalidity, created_at) VALUES (?,?,?)",
                (e.item, int(data["uidvalidity"]), e.time),
            )
            self._name_folder(e.item, data["name"], e.time, e.seq)
        elif kind == Kind.FOLDER_RENAMED:
            self._name_folder(e.item, data["name"], e.time, e.seq)
        elif kind == Kind.FOLDER_DELETED:
            self._execute("UPDATE folders SET deleted_at=? WHERE mailbox_id=?", (e.time, e.item))
            self._execute(
                "UPDATE folder_names SET valid_to=? WHERE mailbox_id=? AND valid_to IS NULL",
                (e.time, e.item),
            )
        elif kind == Kind.FOLDER_ACL:
            self._execute("UPDATE folders SET acl=? WHERE mailbox_id=?", (_json(data.get("acl")), e.item))
        elif kind == Kind.FOLDER_METADATA:
            self._execute(
                "UPDATE folders SET metadata=? WHERE mailbox_id=?",
                (_json(data.get("metadata")), e.item),
            )
        elif kind in CONTENT_KINDS:
            item = ItemId.parse(e.item)
            rows[_ITEM_SQL].append(
                (
                    e.item,
                    item.mailbox_id,
                    item.uidvalidity,
                    item.uid,
                    data["blob"],
                    int(data.get("size", 0)),
                    data.get("internal_date"),
                    e.time,
                    e.seq,
                    _sql(data.get("origin")),
                    _sql(data.get("key")),
                    data.get("message_id"),
                )
            )
            self._record_flags(e.item, e.time, e.seq, data.get("flags") or [])
        elif kind == Kind.MESSAGE_EXPUNGED:
            self._execute(
                "UPDATE items SET expunged_at=?, expunged_seq=? WHERE item=? AND expunged_at IS NULL",
                (e.time, e.seq, e.item),
            )
        elif kind in (Kind.FLAGS_SET, Kind.FLAGS_CLEARED):
            self._flush_rows()
            current = set(self.flags_at(e.item, None) or [])
            change = set(data.get("flags") or [])
            new = current | change if kind == Kind.FLAGS_SET else current - change
            self._record_flags(e.item, e.time, e.seq, sorted(new))
        elif kind == Kind.HOLD_PLACED:
            self._execute(
                "INSERT OR REPLACE INTO holds(matter, data, seq) VALUES (?,?,?)",
                (data["matter"], _json(data), e.seq),
            )
        elif kind == Kind.HOLD_RELEASED:
            self._execute(
                "UPDATE holds SET data=?, seq=? WHERE matter=?", (_json(data), e.seq, data["matter"])
            )
            if data.get("request"):
                self._close_request(data["request"], "approved", e)
        elif kind in _REQUEST_KINDS and e.item:
            self._execute(
                "INSERT OR IGNORE INTO requests(request, kind, actor, requested_at, seq, data, state)"
                " VALUES (?,?,?,?,?,?,'pending')",
                (e.item, kind, e.actor, e.time, e.seq, _json(data)),
            )
        elif kind in _WITHDRAWAL_KINDS and e.item:
            self._close_request(e.item, "withdrawn", e)
        elif kind == Kind.RETENTION_PURGED:
            self._execute("UPDATE items SET purged_at=? WHERE item=?", (e.time, e.item))
            how, rule, request = purge_cause(data)
            self._execute(
                "INSERT OR REPLACE INTO purges(item, mailbox_id, how, rule, request, at) VALUES (?,?,?,?,?,?)",
                (e.item, _mailbox_of(e.item), how, rule, request, e.time),
            )
        elif kind == Kind.ERASURE and data.get("request"):
            self._close_request(data["request"], "approved", e)
        elif kind == Kind.SESSION_LOGIN and e.item:
            self._execute(
                "INSERT OR IGNORE INTO sessions(session, user, login_at, login_seq) VALUES (?,?,?,?)",
                (e.item, data.get("user"), e.time, e.seq),
            )
        elif kind == Kind.SESSION_LOGOUT:
            self._execute(
                "UPDATE sessions SET logout_at=?, logout_seq=? WHERE session=?", (e.time, e.seq, e.item)
            )

    def _close_request(self, request: str, state: str, e) -> None:
        self._execute(
            "UPDATE requests SET state=?, closed_by=?, closed_at=?, closed_seq=?"
            " WHERE request=? AND state='pending'",
            (state, e.actor, e.time, e.seq, request),
        )

    def _name_folder(self, mailbox_id: str, name: str, time: str, seq: int) -> None:
        self._execute(
            "UPDATE folder_names SET valid_to=? WHERE mailbox_id=? AND valid_to IS NULL",
            (time, mailbox_id),
        )
        self.db.execute(
            "INSERT INTO folder_names(mailbox_id, name, valid_from, seq) VALUES (?,?,?,?)",
            (mailbox_id, _sql(name), time, seq),
        )

    def _record_flags(self, item: str, time: str, seq: int, flags: list[str]) -> None:
        self._rows[_FLAGS_SQL].append((item, time, seq, json.dumps(sorted(flags))))

    # ------------------------------------------------------------ folders

    def folder_id(self, name: str, at: str | None = None, *, exact: bool = False) -> str | None:
        """The mailboxID that carried ``name`` at time ``at`` (now when None).

        A name asked for at a time when no folder carried it falls back to the folder
        that carried it most recently, so a folder since deleted can still be found. A name
        no folder ever carried is looked up as Cyrus names it (``user/jane/INBOX`` is
        ``user/jane``), unless ``exact``.
        """
        if not exact and isinstance(name, str) and (cyrus := cyrus_folder_name(name)) != name:
            return self.folder_id(name, at, exact=True) or self.folder_id(cyrus, at, exact=True)
        key = _sql(name)
        if at is None:
            row = self.db.execute(
                "SELECT mailbox_id FROM folder_names WHERE name=? AND valid_to IS NULL", (key,)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT mailbox_id FROM folder_names WHERE name=? AND valid_from<=?"
                " AND (valid_to IS NULL OR valid_to>?) ORDER BY seq DESC LIMIT 1",
                (key, at, at),
            ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT mailbox_id FROM folder_names WHERE name=? ORDER BY seq DESC LIMIT 1",
                (key,),
            ).fetchone()
        return row[0] if row else None

    def folder(self, mailbox_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM folders WHERE mailbox_id=?", (mailbox_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["name"] = self.folder_name(mailbox_id)
        out["names"] = [
            _named(r)
            for r in self.db.execute(
                "SELECT name, valid_from, valid_to FROM folder_names WHERE mailbox_id=? ORDER BY seq",
                (mailbox_id,),
            )
        ]
        return out

    def folder_name(self, mailbox_id: str, at: str | None = None) -> str | None:
        args: tuple[str, ...]
        if at is None:
            sql, args = (
                "SELECT name FROM folder_names WHERE mailbox_id=? ORDER BY seq DESC LIMIT 1",
                (mailbox_id,),
            )
        else:
            sql, args = (
                "SELECT name FROM folder_names WHERE mailbox_id=? AND valid_from<=?"
                " ORDER BY seq DESC LIMIT 1",
                (mailbox_id, at),
            )
        row = self.db.execute(sql, args).fetchone()
        return _name(row[0]) if row else None

    def folders(self, include_deleted: bool = True) -> list[dict]:
        rows = self.db.execute(
            "SELECT f.mailbox_id, f.uidvalidity, f.created_at, f.deleted_at,"
            " (SELECT name FROM folder_names n WHERE n.mailbox_id=f.mailbox_id ORDER BY seq DESC LIMIT 1) AS name,"
            " (SELECT count(*) FROM items i WHERE i.mailbox_id=f.mailbox_id AND i.expunged_at IS NULL"
            "  AND i.purged_at IS NULL) AS messages,"
            " (SELECT count(*) FROM purges p WHERE p.mailbox_id=f.mailbox_id AND p.how='retention') AS purged,"
            " (SELECT count(*) FROM purges p WHERE p.mailbox_id=f.mailbox_id AND p.how='erasure') AS erased"
            " FROM folders f ORDER BY name"
        ).fetchall()
        return [_named(r) for r in rows if include_deleted or r["deleted_at"] is None]

    def next_uid(self, mailbox_id: str, uidvalidity: int | None = None) -> int:
        """One past the folder's highest UID (under ``uidvalidity``, when given)."""
        args: tuple = (mailbox_id,)
        sql = "SELECT max(uid) FROM items WHERE mailbox_id=?"
        if uidvalidity is not None:
            sql, args = sql + " AND uidvalidity=?", (mailbox_id, uidvalidity)
        row = self.db.execute(sql, args).fetchone()
        return (row[0] or 0) + 1

    # ------------------------------------------------------------ items

    def item(self, item: str) -> dict | None:
        row = self.db.execute("SELECT * FROM items WHERE item=?", (item,)).fetchone()
        if row is None:
            return None
        out = _named(row)
        out["flags"] = self.flags_at(item, None) or []
        out["mailbox"] = self.folder_name(out["mailbox_id"])
        return out

    def live_items(self, mailbox_id: str, origin: str | None = None) -> list[dict]:
        """Items present now (not expunged) in a folder, optionally only from one source."""
        sql = "SELECT * FROM items WHERE mailbox_id=? AND expunged_at IS NULL"
        args: tuple = (mailbox_id,)
        if origin is not None:
            sql += " AND origin=?"
            args += (_sql(origin),)
        rows = [_named(r) for r in self.db.execute(sql, args)]
        for r in rows:
            r["flags"] = self.flags_at(r["item"], None) or []
        return rows

    def items_in(self, mailbox_id: str) -> list[dict]:
        """Every item the folder ever held (expunged and purged ones too), in archive order."""
        rows = self.db.execute("SELECT * FROM items WHERE mailbox_id=? ORDER BY appended_seq", (mailbox_id,))
        return [dict(r) for r in rows]

    def items_at(self, mailbox_id: str, at: str) -> list[dict]:
        """The folder as it was at ``at``: items present then, with their flags then."""
        rows = self.db.execute(
            "SELECT * FROM items WHERE mailbox_id=? AND appended_at<=?"
            " AND (expunged_at IS NULL OR expunged_at>?) ORDER BY uid",
            (mailbox_id, at, at),
        ).fetchall()
        out = []
        for r in rows:
            d = _named(r)
            d["flags"] = self.flags_at(d["item"], at) or []
            out.append(d)
        return out

    def flags_at(self, item: str, at: str | None) -> list[str] | None:
        if at is None:
            row = self.db.execute(
                "SELECT flags FROM flag_history WHERE item=? ORDER BY seq DESC LIMIT 1", (item,)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT flags FROM flag_history WHERE item=? AND time<=? ORDER BY time DESC, seq DESC LIMIT 1",
                (item, at),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def items_by_message_id(self, message_id: str) -> list[dict]:
        mid = message_id.strip()
        if not mid.startswith("<"):
            mid = f"<{mid}>"
        rows = self.db.execute(
            "SELECT item, mailbox_id, blob, appended_at, expunged_at, purged_at FROM items"
            " WHERE message_id=? ORDER BY appended_seq",
            (mid,),
        ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["mailbox"] = self.folder_name(d["mailbox_id"])
            out.append(d)
        return out

    def items_by_blob(self, blob: str) -> list[dict]:
        return [_named(r) for r in self.db.execute("SELECT * FROM items WHERE blob=?", (blob,))]

    def folder_names(self) -> list[tuple[str, str]]:
        """(mailboxID, name) for every name any folder ever had."""
        rows = self.db.execute("SELECT DISTINCT mailbox_id, name FROM folder_names")
        return [(m, _name(n) or "") for m, n in rows]

    def blobs_in(self, mailbox_ids: Iterable[str]) -> set[str]:
        """The blobs of the (not purged) items of these folders. No DISTINCT: SQLite's
        temporary B-tree for it costs 3x the query, the set removes repeats for free."""
        ids, out = list(mailbox_ids), set[str]()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            out.update(
                blob
                for blob, purged in self.db.execute(
                    f"SELECT blob, purged_at FROM items WHERE mailbox_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                if purged is None
            )
        return out

    def folder_versions(self, mailbox_ids: Iterable[str]) -> dict[str, int]:
        """mailboxID -> seq of the last ledger entry about the folder or one of its items (0 if
        none): what a reader derived from a folder's items holds while this is unchanged."""
        return {
            m: self.db.execute("SELECT max(seq) FROM item_log WHERE mailbox_id=?", (m,)).fetchone()[0] or 0
            for m in mailbox_ids
        }

    def items_of_blobs(self, blobs: Iterable[str]) -> dict[str, list[dict]]:
        """blob -> its items (item, mailbox_id, internal_date, appended_at, expunged_at, purged_at,
        message_id, origin, source_key)."""
        wanted = list(blobs)
        out: dict[str, list[dict]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for r in self.db.execute(
                "SELECT blob, item, mailbox_id, internal_date, appended_at, expunged_at, purged_at,"
                " message_id, origin, source_key "
                f"FROM items WHERE blob IN ({','.join('?' * len(chunk))}) ORDER BY appended_seq",
                chunk,
            ):
                out.setdefault(r[0], []).append(_named(r))
        return out

    def copies(
        self, mailbox_ids: Iterable[str] | None = None, since: str | None = None, until: str | None = None
    ) -> list[dict]:
        """The archived copies not purged (item, mailbox_id, blob, internal_date, appended_at),
        of these folders (None: all), in archive order: what a search by received date reads.
        ``since``/``until`` (vault time strings): only those received in ``[since, until)``,
        and any whose time is not stored in that form (the caller checks those itself)."""
        sql = "SELECT item, mailbox_id, blob, internal_date, appended_at FROM items WHERE purged_at IS NULL"
        args: list = []
        if since is not None or until is not None:
            when = "coalesce(internal_date, appended_at)"
            sql += f" AND (length({when}) != 27 OR substr({when}, 27) != 'Z' OR ({when} >= ? AND {when} < ?))"
            args += [since or "", until or "~"]  # "~" sorts after every digit
        if mailbox_ids is None:
            return [dict(r) for r in self.db.execute(sql + " ORDER BY appended_seq", args)]
        wanted = sorted(set(mailbox_ids))
        out: list[dict] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            out += [
                dict(r)
                for r in self.db.execute(
                    sql + f" AND mailbox_id IN ({','.join('?' * len(chunk))}) ORDER BY appended_seq",
                    [*args, *chunk],
                )
            ]
        return out

    def purges(self, items: Iterable[str]) -> dict[str, dict]:
        """item -> how it was purged (how: retention|erasure, rule, request, at), for those of
        ``items`` that were."""
        wanted = list(items)
        out: dict[str, dict] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for r in self.db.execute(
                f"SELECT * FROM purges WHERE item IN ({','.join('?' * len(chunk))})", chunk
            ):
                out[r["item"]] = dict(r)
        return out

    def blobs_referenced(self, blobs: Iterable[str]) -> set[str]:
        """Those of ``blobs`` some item not purged still points to."""
        wanted = list(blobs)
        return {
            b
            for b in wanted
            if self.db.execute(
                "SELECT 1 FROM items WHERE blob=? AND purged_at IS NULL LIMIT 1", (b,)
            ).fetchone()
        }

    def purged_only_blobs(self) -> set[str]:
        """Blobs that purged items referenced and no retained item does."""
        rows = self.db.execute(
            "SELECT blob FROM items WHERE purged_at IS NOT NULL EXCEPT SELECT blob FROM items WHERE purged_at IS NULL"
        )
        return {r[0] for r in rows}

    def referenced_blobs(self) -> Iterable[str]:
        for (blob,) in self.db.execute("SELECT DISTINCT blob FROM items WHERE purged_at IS NULL"):
            yield blob

    def hold_data(self) -> list[dict]:
        """Every hold ever placed (released ones carry released_at), oldest first."""
        return [json.loads(r[0]) for r in self.db.execute("SELECT data FROM holds ORDER BY seq")]

    def requests(self, kind: str | None = None, *, state: str | None = None) -> list[dict]:
        """Four-eyes requests (kind: the request entry's kind), oldest first: request, kind,
        actor, requested_at, data, state (pending, approved, withdrawn), closed_by/_at.
        Whether a pending one has expired is the policy's call (vault/policy/approval.py)."""
        sql, args = "SELECT * FROM requests WHERE 1=1", list[str]()
        if kind is not None:
            sql, args = sql + " AND kind=?", [*args, kind]
        if state is not None:
            sql, args = sql + " AND state=?", [*args, state]
        rows = [dict(r) for r in self.db.execute(sql + " ORDER BY seq", args)]
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def request(self, request: str) -> dict | None:
        found = [dict(r) for r in self.db.execute("SELECT * FROM requests WHERE request=?", (request,))]
        if not found:
            return None
        found[0]["data"] = json.loads(found[0]["data"])
        return found[0]

    def all_items(self, include_purged: bool = False) -> list[dict]:
        sql = "SELECT * FROM items" + ("" if include_purged else " WHERE purged_at IS NULL")
        rows = [_named(r) for r in self.db.execute(sql + " ORDER BY appended_seq")]
        for r in rows:
            r["flags"] = self.flags_at(r["item"], None) or []
        return rows

    def arrivals(self, since: str) -> list[dict]:
        """Every item (expunged and purged ones too) that arrived at or after ``since`` (its
        internal date, else when it was archived), without flags: one query, for the web
        service's SNIFF figures (vault/sniff.py)."""
        rows = self.db.execute(
            "SELECT mailbox_id, blob, size, internal_date, appended_at, purged_at FROM items"
            " WHERE coalesce(internal_date, appended_at) >= ? ORDER BY appended_seq",
            (since,),
        )
        return [dict(r) for r in rows]

    def session(self, session: str) -> dict | None:
        """A login session (item ``session:<id>``): user, login_at, logout_at (None: open)."""
        row = self.db.execute("SELECT * FROM sessions WHERE session=?", (session,)).fetchone()
        return dict(row) if row else None

    def has_events_for(self, mailbox_id: str) -> bool:
        """Whether live ingest ever recorded anything about this folder (imported folders
        are not live: reconciling them against the mail server would be wrong)."""
        return (
            self.db.execute(
                "SELECT 1 FROM item_log l JOIN events e ON e.seq = l.seq WHERE l.mailbox_id=? LIMIT 1",
                (mailbox_id,),
            ).fetchone()
            is not None
        )

    def has_event(self, event_id: str) -> bool:
        """Whether entries for this live-ingest event are already in the ledger (exactly once)."""
        return self.db.execute("SELECT 1 FROM events WHERE event=?", (event_id,)).fetchone() is not None

    # ------------------------------------------------------------ changelog

    def log_seqs(self, *, item: str | None = None, mailbox_id: str | None = None) -> list[int]:
        if item is not None:
            rows = self.db.execute("SELECT seq FROM item_log WHERE item=? ORDER BY seq", (item,))
        else:
            rows = self.db.execute("SELECT seq FROM item_log WHERE mailbox_id=? ORDER BY seq", (mailbox_id,))
        return [r[0] for r in rows]

    # ------------------------------------------------------------ summary

    def counts(self) -> dict:
        q = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "folders": q("SELECT count(*) FROM folders"),
            "items": q("SELECT count(*) FROM items"),
            "items_present": q("SELECT count(*) FROM items WHERE expunged_at IS NULL AND purged_at IS NULL"),
            "items_purged_by_retention": q(f"SELECT count(*) FROM purges WHERE how='{RETENTION}'"),
            "items_erased": q(f"SELECT count(*) FROM purges WHERE how='{ERASURE}'"),
            "blobs": q("SELECT count(DISTINCT blob) FROM items WHERE purged_at IS NULL"),
            "applied_seq": self.applied_seq,
        }

    def dump(self) -> dict:
        """Every table's rows in a stable order: what a rebuild must reproduce."""
        out = {}
        for table, order in (
            ("folders", "mailbox_id"),
            ("folder_names", "seq"),
            ("items", "item"),
            ("flag_history", "seq, item"),
            ("item_log", "seq, item"),
            ("holds", "matter"),
            ("requests", "request"),
            ("sessions", "session"),
            ("meta", "key"),
        ):
            out[table] = [tuple(r) for r in self.db.execute(f"SELECT * FROM {table} ORDER BY {order}")]
        return out
