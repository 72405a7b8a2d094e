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

The schema (version ``VERSION``, SQLite's ``user_version``) keeps what is per item small
(docs/architecture.md 4.1): a message is keyed by ``(box, uid)``, ``box`` an integer that
stands for one (mailboxID, UIDVALIDITY) in ``boxes`` (which also holds each mailboxID, and
any other entry item, with a NULL UIDVALIDITY: what ``item_log`` names for a folder, a
session, a request); ``contents`` interns each (blob, message_id) once, the blob id as its 32
bytes; ``origins`` and ``flagsets`` intern the import source and each set of flags; item
times are integers, microseconds since 1970 UTC (``_micros``). An item's row holds the flags
it was appended with; ``flag_history`` only what changed them after (a trigger keeps the
append flags of an item a second append replaces there), and the views read the two as the
one history they are. ``item_log`` is keyed by (box, uid, seq), uid 0 for an entry about a
box alone (``_NO_UID``: its box is the one of UIDVALIDITY NULL), and holds no row for an
item's append: its ``items`` row names it (``appended_seq``). The public methods answer
in the strings they always did: the item id, ``sha256:<hex>``, vault time strings. A
flag or purge entry whose item is not an ItemId is kept in the item log only. A catalog
file of another version is emptied when opened to write (``_prepare``) and the vault's
catch-up replays the ledger into it; a reader that cannot write it replays into memory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from vault.entries import CONTENT_KINDS, Kind
from vault.model import ItemId, cyrus_folder_name, format_time, is_blob_id, is_utf8, parse_time
from vault.store.sqlite import connect

log = logging.getLogger(__name__)

VERSION = 3  # the schema's (PRAGMA user_version); a file of another version is replayed

# an item's id, blob id and flags as the strings they stand for (the views, and the queries)
_ITEM_TEXT = "b.mailbox_id || ':' || b.uidvalidity || ':' || {t}.uid"
_SUBJECT_TEXT = f"CASE WHEN b.uidvalidity IS NULL THEN b.mailbox_id ELSE {_ITEM_TEXT} END"
_BLOB_TEXT = "CASE typeof(c.blob) WHEN 'blob' THEN 'sha256:' || lower(hex(c.blob)) ELSE c.blob END"
_EXPR = {
    "item": _ITEM_TEXT.format(t="i"),
    "mailbox_id": "b.mailbox_id",
    "uidvalidity": "b.uidvalidity",
    "uid": "i.uid",
    "blob": _BLOB_TEXT,
    "size": "i.size",
    "internal_date": "i.internal_date",
    "appended_at": "i.appended_at",
    "appended_seq": "i.appended_seq",
    "expunged_at": "i.expunged_at",
    "expunged_seq": "i.expunged_seq",
    "purged_at": "i.purged_at",
    "origin": "o.origin",
    "source_key": "i.source_key",
    "message_id": "c.message_id",
}
ITEM_FIELDS = tuple(_EXPR)  # what an item row holds, in this order (``SELECT *`` of the old items)
_ITEMS = (
    "items i JOIN boxes b ON b.id = i.box JOIN contents c ON c.id = i.content"
    " LEFT JOIN origins o ON o.id = i.origin"
)
# a contents row of one blob id (?1, as _blob_sql stores it), and of one message_id (?1, its
# _mid ?2): the index's short key first, then the whole value
_BLOB_IS = "substr({t}blob, 1, 8) = substr(?1, 1, 8) AND {t}blob = ?1"
_MID_IS = "mid = ?2 AND message_id = ?1"
_BOXES_OF = "(SELECT id FROM boxes WHERE mailbox_id=?1)"  # a folder's boxes (the parameter: its mailboxID)
_IN_MAILBOX = "i.box IN (SELECT id FROM boxes WHERE mailbox_id=?)"
# an item's flags now: the last change after its append, else the flags it was appended with
_FLAGS_NOW = (
    "(SELECT s.flags FROM flagsets s WHERE s.id = coalesce((SELECT h.flags FROM flag_history h"
    " WHERE h.box = i.box AND h.uid = i.uid AND h.seq > i.appended_seq ORDER BY h.seq DESC LIMIT 1),"
    " i.flags)) AS flags"
)
# its flags at a time (two parameters, the time twice): the latest row of its history then,
# the append counted as one (ties in time: the later seq)
_FLAGS_AT = (
    "(SELECT s.flags FROM (SELECT h.time AS t, h.seq AS q, h.flags AS f FROM flag_history h"
    " WHERE h.box = i.box AND h.uid = i.uid AND h.time <= ?"
    " UNION ALL SELECT i.appended_at, i.appended_seq, i.flags WHERE i.appended_at <= ?) u"
    " JOIN flagsets s ON s.id = u.f ORDER BY u.t DESC, u.q DESC LIMIT 1) AS flags"
)
_NO_UID = 0  # item_log's uid for an entry about a box alone (a folder, a session, a request)


def _cols(*names: str) -> str:
    return ", ".join(f"{_EXPR[n]} AS {n}" for n in names)


_ITEM_COLUMNS = _cols(*ITEM_FIELDS)

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- one row per (mailboxID, UIDVALIDITY) an item names; and per mailboxID, or other entry item
-- (session:<id>, a request id), with uidvalidity NULL: what item_log names
CREATE TABLE boxes (id INTEGER PRIMARY KEY, mailbox_id TEXT NOT NULL, uidvalidity INTEGER);
CREATE UNIQUE INDEX boxes_mailbox ON boxes(mailbox_id, uidvalidity);
-- each (blob, message_id) items name, once: blob the 32 bytes of a sha256 id (else its text)
-- (mid: 48 bits of the message_id's BLAKE2b, _mid; each index keeps a short key, a query
-- compares the whole value too: _BLOB_IS, _MID_IS)
CREATE TABLE contents (id INTEGER PRIMARY KEY, blob BLOB NOT NULL, message_id TEXT, mid INTEGER);
CREATE INDEX contents_blob ON contents(substr(blob, 1, 8));
CREATE INDEX contents_mid ON contents(mid);
CREATE TABLE origins (id INTEGER PRIMARY KEY, origin TEXT NOT NULL UNIQUE);
-- a set of flags: its JSON list, sorted
CREATE TABLE flagsets (id INTEGER PRIMARY KEY, flags TEXT NOT NULL UNIQUE);
CREATE TABLE folders (
    mailbox_id TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT,
    acl TEXT,
    metadata TEXT
) WITHOUT ROWID;
CREATE TABLE folder_names (
    mailbox_id TEXT NOT NULL,
    name TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX folder_names_name ON folder_names(name);
CREATE INDEX folder_names_mailbox ON folder_names(mailbox_id);
-- item times: microseconds since 1970-01-01 UTC (a time not in the vault's form: its text);
-- flags: the flagset it was appended with (its first row of flag history, kept here)
CREATE TABLE items (
    box INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    content INTEGER NOT NULL,
    size INTEGER NOT NULL,
    internal_date INTEGER,
    appended_at INTEGER NOT NULL,
    appended_seq INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    expunged_at INTEGER,
    expunged_seq INTEGER,
    purged_at INTEGER,
    origin INTEGER,
    source_key TEXT,
    PRIMARY KEY (box, uid)
) WITHOUT ROWID;
CREATE INDEX items_content ON items(content);
-- the flags an item took after its append (and any an entry gave it before, or an item a
-- later append replaced had: the trigger keeps its append's flags here)
CREATE TABLE flag_history (
    box INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    PRIMARY KEY (box, uid, seq)
) WITHOUT ROWID;
-- every entry with an item but the one of each item's row (items.appended_seq): (box, uid),
-- or a box of uidvalidity NULL and uid 0 (_NO_UID)
CREATE TABLE item_log (
    box INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (box, uid, seq)
) WITHOUT ROWID;
-- a second append of an item replaces its row: the first one's flags and entry stay
CREATE TRIGGER items_reappended AFTER UPDATE OF appended_seq ON items
    WHEN OLD.appended_seq IS NOT NEW.appended_seq BEGIN
    INSERT OR REPLACE INTO flag_history(box, uid, seq, time, flags)
        VALUES (OLD.box, OLD.uid, OLD.appended_seq, OLD.appended_at, OLD.flags);
    INSERT OR REPLACE INTO item_log(box, uid, seq) VALUES (OLD.box, OLD.uid, OLD.appended_seq);
END;
CREATE TABLE events (event TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX events_seq ON events(seq);
CREATE TABLE holds (matter TEXT PRIMARY KEY, data TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE requests (
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
) WITHOUT ROWID;
-- how each purged item went (retention.purged): by a retention rule or by an erasure request
CREATE TABLE purges (
    box INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    how TEXT NOT NULL,
    rule TEXT,
    request TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (box, uid)
) WITHOUT ROWID;
CREATE TABLE sessions (
    session TEXT PRIMARY KEY,
    user TEXT,
    login_at TEXT NOT NULL,
    login_seq INTEGER NOT NULL,
    logout_at TEXT,
    logout_seq INTEGER
) WITHOUT ROWID;
-- the tables that hold numbers for strings, read as the strings (differences, dump)
CREATE VIEW items_v AS SELECT {_ITEM_COLUMNS} FROM {_ITEMS};
CREATE VIEW flag_history_v AS SELECT {_ITEM_TEXT.format(t="h")} AS item, h.time AS time, h.seq AS seq,
    s.flags AS flags FROM flag_history h JOIN boxes b ON b.id = h.box JOIN flagsets s ON s.id = h.flags
    UNION ALL SELECT {_ITEM_TEXT.format(t="i")}, i.appended_at, i.appended_seq, s.flags
    FROM items i JOIN boxes b ON b.id = i.box JOIN flagsets s ON s.id = i.flags;
CREATE VIEW item_log_v AS SELECT b.mailbox_id AS mailbox_id, {_SUBJECT_TEXT.format(t="l")} AS item,
    l.seq AS seq FROM item_log l JOIN boxes b ON b.id = l.box
    UNION ALL SELECT b.mailbox_id, {_ITEM_TEXT.format(t="i")}, i.appended_seq FROM items i JOIN boxes b ON b.id = i.box;
CREATE VIEW purges_v AS SELECT {_ITEM_TEXT.format(t="p")} AS item, b.mailbox_id AS mailbox_id,
    p.how AS how, p.rule AS rule, p.request AS request, p.at AS at FROM purges p JOIN boxes b ON b.id = p.box;
"""


def _statements(script: str) -> list[str]:
    """A script's statements, one each (a trigger's body holds semicolons of its own)."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    assert not pending.strip(), pending
    return out


_STATEMENTS = _statements(SCHEMA)
# the views differences() and dump() read for the tables of that name
_READ_AS = {
    "items": "items_v",
    "flag_history": "flag_history_v",
    "item_log": "item_log_v",
    "purges": "purges_v",
}


# Inserts that apply() collects and writes with executemany; any other statement flushes them first.
_LOG_SQL = "INSERT INTO item_log(seq, box, uid) VALUES (?,?,?)"  # uid _NO_UID for a box alone
_EVENT_SQL = "INSERT OR IGNORE INTO events(event, seq) VALUES (?,?)"
_ITEM_SQL = (  # a second append of one item replaces the row (the trigger keeps its flags)
    "INSERT INTO items(box, uid, content, size, internal_date, appended_at, appended_seq, flags,"
    " origin, source_key) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(box, uid) DO UPDATE SET"
    " content=excluded.content, size=excluded.size, internal_date=excluded.internal_date,"
    " appended_at=excluded.appended_at, appended_seq=excluded.appended_seq, flags=excluded.flags,"
    " expunged_at=NULL, expunged_seq=NULL, purged_at=NULL, origin=excluded.origin,"
    " source_key=excluded.source_key"
)
_FLAGS_SQL = "INSERT OR REPLACE INTO flag_history(box, uid, seq, time, flags) VALUES (?,?,?,?,?)"
_BATCHED = (_LOG_SQL, _EVENT_SQL, _ITEM_SQL, _FLAGS_SQL)
_REQUEST_KINDS = frozenset({Kind.ERASURE_REQUESTED, Kind.RELEASE_REQUESTED})
_WITHDRAWAL_KINDS = frozenset({Kind.ERASURE_WITHDRAWN, Kind.RELEASE_WITHDRAWN})
_CACHED = (
    50_000  # interned ids a catalog keeps in memory, per table, before it starts over (~12 MB of contents)
)


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
COUNTED = ("folders", "folder_names", "items", "flag_history", "boxes", "contents")
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


def _parsed(values) -> list:
    """A row's values, its JSON ones parsed (a catalog from before ``_json`` kept their keys in
    the order they were recorded: the same data)."""
    out = []
    for v in values:
        if isinstance(v, str) and v[:1] in "{[":
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out.append(v)
    return out


# ------------------------------------------------------------ values as stored

_EPOCH = datetime(1970, 1, 1)  # naive: what the fixed-width UTC text parses to without its Z
_US = timedelta(microseconds=1)
_TIME_COLUMNS = ("internal_date", "appended_at", "expunged_at", "purged_at", "at", "time")


_VAULT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@functools.lru_cache(maxsize=4096)  # an import's entries share their times
def _micros(text):
    """A vault time string (vault/model.py format_time) as microseconds since 1970 UTC; any
    other value as it is (kept as TEXT, read back the same). Fixed width, every field zero
    padded: a string of that form that parses is the one ``_time_text`` writes back."""
    if isinstance(text, str) and _VAULT_TIME.fullmatch(text):
        try:
            return (datetime.fromisoformat(text[:26]) - _EPOCH) // _US
        except ValueError:
            pass
    return text


def _time_text(value):
    """What ``_micros`` stored, back as the vault time string."""
    if not isinstance(value, int):
        return value
    u = _EPOCH + timedelta(microseconds=value)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def _at(when: str) -> int:
    """A time a caller asks about, as the integers item times are stored as."""
    value = _micros(when)
    if isinstance(value, int):
        return value
    return _micros(format_time(parse_time(when)))


def _stored_time(value):
    """An entry's time field as stored: microseconds, or the text it was (None stays None)."""
    return None if value is None else _micros(value if isinstance(value, str) else str(value))


def _blob_sql(bid):
    """A blob id as stored: the 32 bytes of ``sha256:<hex>``, any other id as its text."""
    return bytes.fromhex(bid[7:]) if isinstance(bid, str) and is_blob_id(bid) else bid


def _mid(message_id: str | None) -> int | None:
    """``contents.mid`` of a message_id: the first 48 bits of its BLAKE2b, signed (6 bytes
    in SQLite's record, where the index on the text took ~50 a row)."""
    if message_id is None:
        return None
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogateescape"), digest_size=6).digest()
    return int.from_bytes(digest, "big", signed=True)


_NAME_COLUMNS = ("name", "origin", "source_key")


def _sql(name: str | None) -> str | bytes | None:
    """A name as the catalog stores it: TEXT, or the BLOB of its bytes when it is not UTF-8."""
    if name is None or is_utf8(name):
        return name
    return name.encode("utf-8", "surrogateescape")


def _name(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _named(row) -> dict:
    """A row as a dict, its name columns back as the strings they were recorded as and its
    item times as vault time strings."""
    out = dict(row)
    for column in _NAME_COLUMNS:
        if isinstance(out.get(column), bytes):
            out[column] = _name(out[column])
    for column in _TIME_COLUMNS:
        if isinstance(out.get(column), int):
            out[column] = _time_text(out[column])
    return out


def _with_flags(row) -> dict:
    out = _named(row)
    out["flags"] = json.loads(out["flags"]) if out["flags"] else []
    return out


def _item_key(item: str) -> ItemId | None:
    try:
        return ItemId.parse(item)
    except ValueError:
        return None


class Catalog:
    def __init__(self, path: Path | str, *, read_only: bool = False):
        """``read_only``: never write the file (a read-only home, vault/store/sqlite.py); a
        reader that must catch up then goes on with a copy in memory (``into_memory``), as
        does one whose file is of another schema version (the ledger has it all)."""
        self.path = Path(path)
        self.read_only = read_only
        self._ids: dict[str, dict] = {
            "boxes": {},
            "contents": {},
            "origins": {},
            "flagsets": {},
            "flag_lists": {},
        }
        self.db = connect(self.path, read_only=read_only, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        if read_only:
            if self._version() != VERSION:
                self.db.close()
                self.db, self.read_only = self._memory(), False
                self._prepare()
            return
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._prepare()

    @classmethod
    def from_config(cls, config, *, read_only: bool = False) -> Catalog:
        return cls(config.path("catalog"), read_only=read_only)

    @classmethod
    def empty(cls) -> Catalog:
        """A catalog in memory, for a reader whose home has none it can read."""
        return cls(":memory:")

    @staticmethod
    def _memory() -> sqlite3.Connection:
        memory = sqlite3.connect(":memory:", isolation_level=None)
        memory.row_factory = sqlite3.Row
        return memory

    def _version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _prepare(self) -> None:
        """Create the schema in a new file; empty a file of another version first: it is
        derived state, which the vault's catch-up replays from the ledger's first entry."""
        if self._version() == VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            old = self._version()
            found = self.db.execute(
                "SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view')"
                " AND name NOT LIKE 'sqlite_%' ORDER BY type DESC"
            ).fetchall()
            if old != VERSION:
                for kind, name in found:
                    self.db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
                for statement in _STATEMENTS:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        if old != VERSION and found:
            log.warning(
                "%s: catalog of schema version %d (this vault's is %d): emptied, the ledger is replayed into it",
                self.path,
                old,
                VERSION,
            )
            try:
                self.db.execute("VACUUM")  # give back the old file's pages (the catalog is empty)
            except sqlite3.OperationalError:  # another connection reads it: the next rebuild does
                pass

    def into_memory(self) -> None:
        """Go on with a private copy in memory of what the file holds: a reader that cannot
        write the file (read-only, full) still catches up with the ledger, for itself alone."""
        memory = self._memory()
        self.db.backup(memory)
        self.db.close()
        self.db, self.read_only = memory, False
        self._prepare()

    def close(self) -> None:
        self.db.close()

    def page_count(self) -> int:
        return self.db.execute("PRAGMA page_count").fetchone()[0]

    def compact(self, pages_before: int) -> bool:
        """After a bulk run (an import) that at least doubled the file since it had
        ``pages_before`` pages: ``VACUUM``, rewriting every b-tree full. Rows inserted out of
        key order (several folders' items at once, random blob ids) leave pages a third
        empty; the rewrite costs at most about twice what the run wrote, so a run that adds
        a little to a large catalog never pays for it. Whether it did; a failure (a full
        disk, a busy file) leaves the catalog as it was, which is as good."""
        if self.read_only or self.page_count() < 2 * max(pages_before, 1):
            return False
        try:
            self.db.execute("VACUUM")
            # the WAL now holds every page: give its file back (a service's writer stays open)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as e:
            log.warning("%s: not compacted after the import: %s", self.path, e)
            return False
        return True

    # ------------------------------------------------------------ interned ids

    def _box(self, mailbox_id: str, uidvalidity: int | None = None, *, create: bool = True) -> int | None:
        """The integer of (mailboxID, UIDVALIDITY) (``uidvalidity`` None: the mailboxID, or
        another entry item, alone); made when ``create``, else None when there is none."""
        return self._intern(
            "boxes",
            (mailbox_id, uidvalidity),
            "SELECT id FROM boxes WHERE mailbox_id=? AND uidvalidity IS ?",
            "INSERT INTO boxes(mailbox_id, uidvalidity) VALUES (?,?)",
            create,
        )

    def _made_box(self, mailbox_id: str, uidvalidity: int | None = None) -> int:
        found = self._box(mailbox_id, uidvalidity)
        assert found is not None
        return found

    def _content(self, blob: str, message_id: str | None) -> int:
        key = (_blob_sql(blob), message_id)
        ids = self._ids["contents"]
        found = ids.get(key)
        if found is None:
            row = self.db.execute(
                f"SELECT id FROM contents WHERE {_BLOB_IS.format(t='')} AND message_id IS ?2", key
            ).fetchone()
            if row is not None:
                found = row[0]
            else:
                found = self.db.execute(
                    "INSERT INTO contents(blob, message_id, mid) VALUES (?,?,?)", (*key, _mid(message_id))
                ).lastrowid
            if len(ids) >= _CACHED:
                ids.clear()
            ids[key] = found
        assert found is not None
        return found

    def _origin(self, origin: str | None) -> int | None:
        if origin is None:
            return None
        return self._intern(
            "origins",
            (_sql(origin),),
            "SELECT id FROM origins WHERE origin=?",
            "INSERT INTO origins(origin) VALUES (?)",
            True,
        )

    def _flagset(self, flags: list[str]) -> int:
        made = self._ids["flag_lists"].get(key := tuple(sorted(flags)))
        if made is not None:
            return made
        found = self._intern(
            "flagsets",
            (json.dumps(list(key)),),
            "SELECT id FROM flagsets WHERE flags=?",
            "INSERT INTO flagsets(flags) VALUES (?)",
            True,
        )
        assert found is not None
        self._ids["flag_lists"][key] = found
        return found

    def _intern(self, table: str, key: tuple, find: str, make: str, create: bool) -> int | None:
        """The id of ``key`` in an interning table (remembered: ids never change, and an apply
        that rolls back forgets what it made)."""
        ids = self._ids[table]
        found = ids.get(key)
        if found is None:
            row = self.db.execute(find, key).fetchone()
            if row is not None:
                found = row[0]
            elif not create:
                return None
            else:
                found = self.db.execute(make, key).lastrowid
            if len(ids) >= _CACHED:
                ids.clear()
            ids[key] = found
        return found

    def _key(self, item: str, *, create: bool = True) -> tuple[int, int] | None:
        """(box, uid) of an item id; None when it is none (or, not ``create``, is unknown)."""
        parsed = _item_key(item)
        if parsed is None:
            return None
        box = self._box(parsed.mailbox_id, parsed.uidvalidity, create=create)
        return None if box is None else (box, parsed.uid)

    def _subject(self, item: str) -> tuple[int, int]:
        """(box, uid) of what an entry's item names: an item, else a mailboxID or other name
        (its box of UIDVALIDITY NULL, and ``_NO_UID``)."""
        key = self._key(item)
        if key is not None:
            return key
        return self._made_box(item), _NO_UID

    def _boxes_of(self, mailbox_id: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM boxes WHERE mailbox_id=?", (mailbox_id,))]

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
            for ids in self._ids.values():  # some may name rows the rollback takes back
                ids.clear()
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
        file): ``(table, key, what)`` with what in missing, extra, differs. Tables holding
        numbers for strings are compared as their views read (``_READ_AS``), so each row is
        named by its item id, blob id and so on, whatever numbers either file gave them."""
        out: list[tuple[str, str, str]] = []
        self.db.execute("ATTACH DATABASE ? AS fresh", (str(fresh.path),))
        try:
            for table, key in KEYS.items():
                cols = ", ".join(key)
                mine = self._except(table, key, "main", "fresh")
                theirs = self._except(table, key, "fresh", "main")
                for k in sorted(theirs.keys() - mine.keys(), key=repr):
                    out.append((table, _key_text(cols, k), "missing"))
                for k in sorted(mine.keys() - theirs.keys(), key=repr):
                    out.append((table, _key_text(cols, k), "extra"))
                for k in sorted(mine.keys() & theirs.keys(), key=repr):
                    if _parsed(mine[k]) != _parsed(theirs[k]):
                        out.append((table, _key_text(cols, k), "differs"))
        finally:
            self.db.execute("DETACH DATABASE fresh")
        return out

    def _except(self, table: str, key: tuple[str, ...], a: str, b: str) -> dict[tuple, list]:
        """key -> row, of the rows of ``a``'s table that ``b``'s has not."""
        cols, source = ", ".join(key), _READ_AS.get(table, table)
        rows = self.db.execute(
            f"SELECT {cols}, * FROM (SELECT * FROM {a}.{source} EXCEPT SELECT * FROM {b}.{source})"
        )
        return {tuple(r[: len(key)]): list(r[len(key) :]) for r in rows}

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
        kind = e.kind
        if e.item is not None and kind not in CONTENT_KINDS:  # an item's append: its items row
            rows[_LOG_SQL].append((e.seq, *self._subject(e.item)))
        if "event" in data:
            rows[_EVENT_SQL].append((data["event"], e.seq))
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
            made = (self._made_box(item.mailbox_id, item.uidvalidity), item.uid)
            rows[_ITEM_SQL].append(
                (
                    *made,
                    self._content(data["blob"], data.get("message_id")),
                    int(data.get("size", 0)),
                    _stored_time(data.get("internal_date")),
                    _micros(e.time),
                    e.seq,
                    self._flagset(data.get("flags") or []),
                    self._origin(data.get("origin")),
                    _sql(data.get("key")),
                )
            )
        elif kind == Kind.MESSAGE_EXPUNGED:
            if (key := self._key(e.item)) is not None:
                self._execute(
                    "UPDATE items SET expunged_at=?, expunged_seq=? WHERE box=? AND uid=? AND expunged_at IS NULL",
                    (_micros(e.time), e.seq, *key),
                )
        elif kind in (Kind.FLAGS_SET, Kind.FLAGS_CLEARED):
            if (key := self._key(e.item)) is not None:
                self._flush_rows()
                current = set(self._flags(key, None) or [])
                change = set(data.get("flags") or [])
                new = current | change if kind == Kind.FLAGS_SET else current - change
                self._record_flags(key, e.time, e.seq, sorted(new))
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
            if (key := self._key(e.item)) is not None:
                self._execute("UPDATE items SET purged_at=? WHERE box=? AND uid=?", (_micros(e.time), *key))
                how, rule, request = purge_cause(data)
                self._execute(
                    "INSERT OR REPLACE INTO purges(box, uid, how, rule, request, at) VALUES (?,?,?,?,?,?)",
                    (*key, how, rule, request, _micros(e.time)),
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

    def _record_flags(self, key: tuple[int, int], time: str, seq: int, flags: list[str]) -> None:
        self._rows[_FLAGS_SQL].append((*key, seq, _micros(time), self._flagset(flags)))

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
        boxes = "(SELECT id FROM boxes b WHERE b.mailbox_id=f.mailbox_id)"
        rows = self.db.execute(
            "SELECT f.mailbox_id, f.uidvalidity, f.created_at, f.deleted_at,"
            " (SELECT name FROM folder_names n WHERE n.mailbox_id=f.mailbox_id ORDER BY seq DESC LIMIT 1) AS name,"
            f" (SELECT count(*) FROM items i WHERE i.box IN {boxes} AND i.expunged_at IS NULL"
            "  AND i.purged_at IS NULL) AS messages,"
            f" (SELECT count(*) FROM purges p WHERE p.box IN {boxes} AND p.how='{RETENTION}') AS purged,"
            f" (SELECT count(*) FROM purges p WHERE p.box IN {boxes} AND p.how='{ERASURE}') AS erased"
            " FROM folders f ORDER BY name"
        ).fetchall()
        return [_named(r) for r in rows if include_deleted or r["deleted_at"] is None]

    def next_uid(self, mailbox_id: str, uidvalidity: int | None = None) -> int:
        """One past the folder's highest UID (under ``uidvalidity``, when given)."""
        if uidvalidity is None:
            row = self.db.execute(
                f"SELECT max(uid) FROM items i WHERE {_IN_MAILBOX}", (mailbox_id,)
            ).fetchone()
        else:
            box = self._box(mailbox_id, uidvalidity, create=False)
            row = self.db.execute("SELECT max(uid) FROM items WHERE box=?", (box,)).fetchone()
        return (row[0] or 0) + 1

    # ------------------------------------------------------------ items

    def item(self, item: str) -> dict | None:
        key = self._key(item, create=False)
        row = (
            None
            if key is None
            else self.db.execute(
                f"SELECT {_ITEM_COLUMNS}, {_FLAGS_NOW} FROM {_ITEMS} WHERE i.box=? AND i.uid=?", key
            ).fetchone()
        )
        if row is None:
            return None
        out = _with_flags(row)
        out["mailbox"] = self.folder_name(out["mailbox_id"])
        return out

    def live_items(self, mailbox_id: str, origin: str | None = None) -> list[dict]:
        """Items present now (not expunged) in a folder, optionally only from one source."""
        sql = f"SELECT {_ITEM_COLUMNS}, {_FLAGS_NOW} FROM {_ITEMS} WHERE {_IN_MAILBOX} AND i.expunged_at IS NULL"
        args: tuple = (mailbox_id,)
        if origin is not None:
            sql += " AND o.origin=?"
            args += (_sql(origin),)
        return [_with_flags(r) for r in self.db.execute(sql, args)]

    def items_in(self, mailbox_id: str) -> list[dict]:
        """Every item the folder ever held (expunged and purged ones too), in archive order."""
        rows = self.db.execute(
            f"SELECT {_ITEM_COLUMNS} FROM {_ITEMS} WHERE {_IN_MAILBOX} ORDER BY i.appended_seq", (mailbox_id,)
        )
        return [_named(r) for r in rows]

    def items_at(self, mailbox_id: str, at: str) -> list[dict]:
        """The folder as it was at ``at``: items present then, with their flags then."""
        when = _at(at)
        rows = self.db.execute(
            f"SELECT {_ITEM_COLUMNS}, {_FLAGS_AT} FROM {_ITEMS} WHERE {_IN_MAILBOX} AND i.appended_at<=?"
            " AND (i.expunged_at IS NULL OR i.expunged_at>?) ORDER BY i.uid",
            (when, when, mailbox_id, when, when),
        )
        return [_with_flags(r) for r in rows]

    def flags_at(self, item: str, at: str | None) -> list[str] | None:
        key = self._key(item, create=False)
        return None if key is None else self._flags(key, at)

    def _flags(self, key: tuple[int, int], at: str | None) -> list[str] | None:
        """The item's last flags (at ``at``): its flag history and its append (which an
        item that was never appended, only flagged, has not)."""
        if at is None:
            row = self.db.execute(
                "SELECT s.flags FROM (SELECT seq AS q, flags AS f FROM flag_history WHERE box=?1 AND uid=?2"
                " UNION ALL SELECT appended_seq, flags FROM items WHERE box=?1 AND uid=?2) u"
                " JOIN flagsets s ON s.id = u.f ORDER BY u.q DESC LIMIT 1",
                key,
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT s.flags FROM (SELECT time AS t, seq AS q, flags AS f FROM flag_history"
                " WHERE box=?1 AND uid=?2 AND time<=?3 UNION ALL SELECT appended_at, appended_seq, flags"
                " FROM items WHERE box=?1 AND uid=?2 AND appended_at<=?3) u"
                " JOIN flagsets s ON s.id = u.f ORDER BY u.t DESC, u.q DESC LIMIT 1",
                (*key, _at(at)),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def items_by_message_id(self, message_id: str) -> list[dict]:
        mid = message_id.strip()
        if not mid.startswith("<"):
            mid = f"<{mid}>"
        rows = self.db.execute(
            f"SELECT {_cols('item', 'mailbox_id', 'blob', 'appended_at', 'expunged_at', 'purged_at')}"
            f" FROM {_ITEMS} WHERE i.content IN (SELECT id FROM contents WHERE {_MID_IS})"
            " ORDER BY i.appended_seq",
            (mid, _mid(mid)),
        ).fetchall()
        out = []
        for r in rows:
            d = _named(r)
            d["mailbox"] = self.folder_name(d["mailbox_id"])
            out.append(d)
        return out

    def items_by_blob(self, blob: str) -> list[dict]:
        return [
            _named(r)
            for r in self.db.execute(
                f"SELECT {_ITEM_COLUMNS} FROM {_ITEMS} WHERE i.content IN"
                f" (SELECT id FROM contents WHERE {_BLOB_IS.format(t='')})",
                (_blob_sql(blob),),
            )
        ]

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
                    f"SELECT {_BLOB_TEXT}, i.purged_at FROM items i JOIN contents c ON c.id = i.content"
                    f" WHERE i.box IN (SELECT id FROM boxes WHERE mailbox_id IN ({','.join('?' * len(chunk))}))",
                    chunk,
                )
                if purged is None
            )
        return out

    def folder_versions(self, mailbox_ids: Iterable[str]) -> dict[str, int]:
        """mailboxID -> seq of the last ledger entry about the folder or one of its items (0 if
        none): what a reader derived from a folder's items holds while this is unchanged."""
        return {
            m: self.db.execute(
                f"SELECT max(s) FROM (SELECT max(seq) AS s FROM item_log WHERE box IN {_BOXES_OF}"
                f" UNION ALL SELECT max(appended_seq) FROM items WHERE box IN {_BOXES_OF})",
                (m,),
            ).fetchone()[0]
            or 0
            for m in mailbox_ids
        }

    def items_of_blobs(self, blobs: Iterable[str]) -> dict[str, list[dict]]:
        """blob -> its items (item, mailbox_id, internal_date, appended_at, expunged_at, purged_at,
        message_id, origin, source_key)."""
        wanted = list(blobs)
        out: dict[str, list[dict]] = {}
        columns = _cols(
            "blob",
            "item",
            "mailbox_id",
            "internal_date",
            "appended_at",
            "expunged_at",
            "purged_at",
            "message_id",
            "origin",
            "source_key",
        )
        for i in range(0, len(wanted), 500):
            chunk = [_blob_sql(b) for b in wanted[i : i + 500]]
            numbered = range(1, len(chunk) + 1)
            prefixes = ",".join(f"substr(?{n}, 1, 8)" for n in numbered)
            for r in self.db.execute(
                f"SELECT {columns} FROM {_ITEMS} WHERE i.content IN (SELECT id FROM contents"
                f" WHERE substr(blob, 1, 8) IN ({prefixes}) AND blob IN ({','.join(f'?{n}' for n in numbered)}))"
                " ORDER BY i.appended_seq",
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
        sql = (
            f"SELECT {_cols('item', 'mailbox_id', 'blob', 'internal_date', 'appended_at')} FROM {_ITEMS}"
            " WHERE i.purged_at IS NULL"
        )
        args: list = []
        if since is not None or until is not None:
            when = "coalesce(i.internal_date, i.appended_at)"
            sql += f" AND (typeof({when}) != 'integer' OR ({when} >= ? AND {when} < ?))"
            args += [-(2**63) if since is None else _at(since), 2**63 - 1 if until is None else _at(until)]
        if mailbox_ids is None:
            return [_named(r) for r in self.db.execute(sql + " ORDER BY i.appended_seq", args)]
        wanted = sorted(set(mailbox_ids))
        out: list[dict] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            out += [
                _named(r)
                for r in self.db.execute(
                    sql + f" AND b.mailbox_id IN ({','.join('?' * len(chunk))}) ORDER BY i.appended_seq",
                    [*args, *chunk],
                )
            ]
        return out

    def purges(self, items: Iterable[str]) -> dict[str, dict]:
        """item -> how it was purged (how: retention|erasure, rule, request, at), for those of
        ``items`` that were."""
        out: dict[str, dict] = {}
        for item in items:
            key = self._key(item, create=False)
            row = (
                None
                if key is None
                else self.db.execute(
                    f"SELECT {_ITEM_TEXT.format(t='p')} AS item, b.mailbox_id AS mailbox_id, p.how AS how,"
                    " p.rule AS rule, p.request AS request, p.at AS at"
                    " FROM purges p JOIN boxes b ON b.id = p.box WHERE p.box=? AND p.uid=?",
                    key,
                ).fetchone()
            )
            if row is not None:
                out[item] = _named(row)
        return out

    def blobs_referenced(self, blobs: Iterable[str]) -> set[str]:
        """Those of ``blobs`` some item not purged still points to."""
        wanted = list(blobs)
        return {
            b
            for b in wanted
            if self.db.execute(
                "SELECT 1 FROM contents c JOIN items i ON i.content = c.id"
                f" WHERE {_BLOB_IS.format(t='c.')} AND i.purged_at IS NULL LIMIT 1",
                (_blob_sql(b),),
            ).fetchone()
        }

    def purged_only_blobs(self) -> set[str]:
        """Blobs that purged items referenced and no retained item does."""
        blobs = f"SELECT {_BLOB_TEXT} FROM items i JOIN contents c ON c.id = i.content WHERE i.purged_at"
        rows = self.db.execute(f"{blobs} IS NOT NULL EXCEPT {blobs} IS NULL")
        return {r[0] for r in rows}

    def referenced_blobs(self) -> Iterable[str]:
        for (blob,) in self.db.execute(
            f"SELECT DISTINCT {_BLOB_TEXT} FROM contents c"
            " WHERE EXISTS (SELECT 1 FROM items i WHERE i.content = c.id AND i.purged_at IS NULL)"
        ):
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
        sql = f"SELECT {_ITEM_COLUMNS}, {_FLAGS_NOW} FROM {_ITEMS}" + (
            "" if include_purged else " WHERE i.purged_at IS NULL"
        )
        return [_with_flags(r) for r in self.db.execute(sql + " ORDER BY i.appended_seq")]

    def arrivals(self, since: str) -> list[dict]:
        """Every item (expunged and purged ones too) that arrived at or after ``since`` (its
        internal date, else when it was archived), without flags: one query, for the web
        service's SNIFF figures (vault/sniff.py). One whose time is not stored as a vault
        time is listed too (the caller reads its time itself)."""
        when = "coalesce(i.internal_date, i.appended_at)"
        rows = self.db.execute(
            f"SELECT {_cols('mailbox_id', 'blob', 'size', 'internal_date', 'appended_at', 'purged_at')}"
            f" FROM {_ITEMS} WHERE typeof({when}) != 'integer' OR {when} >= ? ORDER BY i.appended_seq",
            (_at(since),),
        )
        return [_named(r) for r in rows]

    def session(self, session: str) -> dict | None:
        """A login session (item ``session:<id>``): user, login_at, logout_at (None: open)."""
        row = self.db.execute("SELECT * FROM sessions WHERE session=?", (session,)).fetchone()
        return dict(row) if row else None

    def has_events_for(self, mailbox_id: str) -> bool:
        """Whether live ingest ever recorded anything about this folder (imported folders
        are not live: reconciling them against the mail server would be wrong)."""
        return (
            self.db.execute(
                f"SELECT 1 FROM item_log l JOIN events e ON e.seq = l.seq WHERE l.box IN {_BOXES_OF}"
                f" UNION ALL SELECT 1 FROM items i JOIN events e ON e.seq = i.appended_seq"
                f" WHERE i.box IN {_BOXES_OF} LIMIT 1",
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
            key: tuple[int | None, int] | None = self._key(item, create=False)
            if key is None:  # a mailboxID or another entry item
                key = (self._box(item, create=False), _NO_UID)
            rows = self.db.execute(
                "SELECT seq FROM item_log WHERE box=?1 AND uid=?2"
                " UNION ALL SELECT appended_seq FROM items WHERE box=?1 AND uid=?2 ORDER BY 1",
                key,
            )
        else:
            rows = self.db.execute(
                f"SELECT seq FROM item_log WHERE box IN {_BOXES_OF}"
                f" UNION ALL SELECT appended_seq FROM items WHERE box IN {_BOXES_OF} ORDER BY 1",
                (mailbox_id,),
            )
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
            "blobs": q(
                "SELECT count(DISTINCT c.blob) FROM items i JOIN contents c ON c.id = i.content"
                " WHERE i.purged_at IS NULL"
            ),
            "applied_seq": self.applied_seq,
        }

    def dump(self) -> dict:
        """Every table's rows in a stable order, as the strings they stand for: what a rebuild
        must reproduce."""
        out = {}
        for table, order in (
            ("folders", "mailbox_id"),
            ("folder_names", "seq"),
            ("items", "item"),
            ("flag_history", "seq, item"),
            ("item_log", "seq, item"),
            ("purges", "item"),
            ("holds", "matter"),
            ("requests", "request"),
            ("sessions", "session"),
            ("meta", "key"),
        ):
            source = _READ_AS.get(table, table)
            out[table] = [tuple(r) for r in self.db.execute(f"SELECT * FROM {source} ORDER BY {order}")]
        return out
