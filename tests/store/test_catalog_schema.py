"""The catalog's schema version: a catalog.sqlite of another version (the first schema, which
kept item ids, blob ids and times as text and had no version) is derived state, replayed from
the ledger when it is opened; a reader of a read-only home replays it in memory instead.
Also: what the compact schema stores answers in the strings the ledger recorded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.core.helpers import (
    init_vault,
    maildir_file,
    make_maildir,
    read_maildir,
    read_only_view,
    set_maildir_flags,
    sha,
)
from tests.fixtures.corpus import message_files
from vault.config import Config
from vault.store.catalog import VERSION, Catalog
from vault.testing.cli import vaultctl, vaultctl_run

MAILBOX = "user/jane/INBOX"

# the first schema's item tables (no user_version), as a catalog written before VERSION 2 has them
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE folders (mailbox_id TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL,
    created_at TEXT NOT NULL, deleted_at TEXT, acl TEXT, metadata TEXT);
CREATE TABLE folder_names (mailbox_id TEXT NOT NULL, name TEXT NOT NULL, valid_from TEXT NOT NULL,
    valid_to TEXT, seq INTEGER NOT NULL);
CREATE TABLE items (item TEXT PRIMARY KEY, mailbox_id TEXT NOT NULL, uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL, internal_date TEXT,
    appended_at TEXT NOT NULL, appended_seq INTEGER NOT NULL, expunged_at TEXT, expunged_seq INTEGER,
    purged_at TEXT, origin TEXT, source_key TEXT, message_id TEXT);
CREATE INDEX items_blob ON items(blob);
CREATE TABLE flag_history (item TEXT NOT NULL, time TEXT NOT NULL, seq INTEGER NOT NULL, flags TEXT NOT NULL);
CREATE TABLE item_log (mailbox_id TEXT, item TEXT NOT NULL, seq INTEGER NOT NULL);
"""


@pytest.fixture
def vault(tmp_path, spamassassin_dir):
    """A vault of 20 messages, then 3 of them gone and one flagged, and what it answers."""
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "easy-ham-1")[:20]
    box = make_maildir(tmp_path / "Maildir", files)
    assert vaultctl_run(home, "import", str(box), "--mailbox", MAILBOX).code == 0
    for n in (3, 4, 5):
        maildir_file(box, n).unlink()
    set_maildir_flags(box, 7, ["\\Seen", "\\Flagged"])
    assert vaultctl_run(home, "import", str(box), "--mailbox", MAILBOX).code == 0
    return home, _answers(home)


def _answers(home: Path) -> dict:
    run = lambda *args: json.loads(vaultctl(home, *args, "--json", check=True).stdout)  # noqa: E731
    return {
        "ls": run("ls"),
        "log": run("log", "--mailbox", MAILBOX),
        "status": {k: v for k, v in run("status").items() if k.startswith(("items", "blobs", "folders"))},
    }


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def _old_catalog(home: Path) -> bytes:
    """Put a catalog of the first schema in the home's place, claiming to be current (its
    applied seq is the ledger's size) and holding one wrong item: what it holds must not
    be answered from."""
    from vault.archive import Vault

    with Vault.open(Config.load(home)) as v:
        size = v.ledger.size
    path = home / "catalog.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('applied_seq', ?)", (str(size),))
    db.execute(
        "INSERT INTO items VALUES ('x:1:1', 'x', 1, 1, 'sha256:00', 1, NULL, '2000-01-01T00:00:00.000000Z',"
        " 1, NULL, NULL, NULL, NULL, NULL, NULL)"
    )
    db.commit()
    db.close()
    assert _version(path) == 0
    return path.read_bytes()


def test_an_old_schema_catalog_is_replayed_from_the_ledger_on_open(vault, tmp_path):
    home, before = vault
    assert _version(home / "catalog.sqlite") == VERSION
    _old_catalog(home)

    first = vaultctl(home, "ls", "--json")
    assert first.returncode == 0, first.stderr
    assert "emptied, the ledger is replayed into it" in first.stderr, first.stderr
    assert _answers(home) == before
    assert _version(home / "catalog.sqlite") == VERSION
    r = vaultctl_run(home, "verify")
    assert r.code == 0, r
    out = tmp_path / "out"
    assert vaultctl_run(home, "restore", "--mailbox", MAILBOX, "--to", f"maildir:{out}").code == 0
    assert len(read_maildir(out)) == 17


def test_an_old_schema_catalog_in_a_read_only_home_is_replayed_in_memory(vault, tmp_path):
    home, before = vault
    old = _old_catalog(home)
    with read_only_view(home, tmp_path / "ro") as ro:
        assert _answers(ro) == before
        assert vaultctl(ro, "verify").returncode == 0
    assert (home / "catalog.sqlite").read_bytes() == old  # not a byte written
    assert _version(home / "catalog.sqlite") == 0


def test_the_python_api_empties_an_old_schema_file(vault):
    home, _ = vault
    _old_catalog(home)
    catalog = Catalog(home / "catalog.sqlite")
    try:
        assert catalog.applied_seq == 0 and catalog.counts()["items"] == 0
        assert catalog.item("x:1:1") is None
    finally:
        catalog.close()
    assert _version(home / "catalog.sqlite") == VERSION


def test_item_rows_read_back_as_the_ledger_recorded_them(vault):
    """Item ids, blob ids, times and flags come back as the strings of the ledger's entries,
    though the catalog keeps them as numbers and bytes."""
    from vault.archive import Vault

    home, _ = vault
    with Vault.open(Config.load(home)) as v:
        entries = {e.item: e for e in v.ledger.entries(1) if e.kind == "message.appended"}
        items = v.catalog.all_items(include_purged=True)
        assert {i["item"] for i in items} == set(entries)
        for i in items:
            e = entries[i["item"]]
            assert (i["blob"], i["appended_at"], i["internal_date"]) == (
                e.data["blob"],
                e.time,
                e.data["internal_date"],
            )
            assert i["message_id"] == e.data.get("message_id")
            assert i["source_key"] == e.data.get("key") and i["origin"] == e.data.get("origin")
        gone = [i for i in items if i["expunged_at"] is not None]
        assert len(gone) == 3 and all(i["expunged_at"] > i["appended_at"] for i in gone)
        assert sorted(f for i in items for f in i["flags"] if f == "\\Flagged") == ["\\Flagged"]
        one = items[0]
        assert v.catalog.items_by_blob(one["blob"])[0]["item"] == one["item"]
        assert v.catalog.items_at(one["mailbox_id"], one["appended_at"])[0]["item"] == one["item"]
        assert "sha256:" + sha(v.store.get(one["blob"])) == one["blob"]


def test_verify_names_a_changed_or_extra_row_by_its_item_id(vault):
    """The tables hold integers for items; verify's row-by-row comparison still names each
    row by its item id (and seq), as it did when the tables held the strings."""
    home, _ = vault
    db = sqlite3.connect(home / "catalog.sqlite")
    changed, extra = [r[0] for r in db.execute("SELECT item FROM items_v ORDER BY uid LIMIT 2")]
    db.execute("UPDATE items SET size = size + 1 WHERE uid = (SELECT min(uid) FROM items)")
    db.execute(  # a flag change the ledger never made (an item's append flags are in items)
        "INSERT INTO flag_history(box, uid, seq, time, flags)"
        " SELECT box, uid, 999999, appended_at, flags FROM items WHERE uid = (SELECT min(uid) + 1 FROM items)"
        " LIMIT 1"
    )
    db.commit()
    db.close()
    r = vaultctl_run(home, "verify", "--json")
    assert r.code == 1, r
    found = {(p["where"], p["what"].split(" (")[0]) for p in json.loads(r.out)["problems"]}
    assert (f"catalog item {changed}", "differs from what the ledger says") in found, found
    assert (f"catalog flag_history item={extra}, seq=999999", "not in the ledger") in found, found
    assert vaultctl_run(home, "verify", "--repair").code == 0
    assert vaultctl_run(home, "verify").code == 0


def _entries(*specs: tuple[str, str, str, dict]) -> list:
    """Ledger entries (seq from 1) of (time, kind, item, data): what Catalog.apply reads."""
    from vault.store.ledger import Entry

    return [
        Entry(seq=n, time=t, kind=k, item=i, actor="test", data=d, prev="", hash="")
        for n, (t, k, i, d) in enumerate(specs, 1)
    ]


def _t(second: int) -> str:
    return f"2024-01-01T00:00:{second:02d}.000000Z"


def test_flags_through_appends_changes_and_a_second_append(tmp_path):
    """An item's flags now and at each time: its append's, the changes after, flags given
    before it was appended, and a second append of the same item (which replaces the row but
    not the history), a change stamped earlier than the append it follows included."""
    item, blob = "mbox:7:1", "sha256:" + "ab" * 32
    appended = {"blob": blob, "size": 3, "internal_date": _t(0)}
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        catalog.apply(
            _entries(
                (_t(1), "folder.created", "mbox", {"name": "user/a/INBOX", "uidvalidity": 7}),
                (_t(2), "flags.set", item, {"flags": ["$early"]}),  # before any append
                (_t(3), "message.appended", item, {**appended, "flags": ["\\Seen"]}),
                (_t(5), "flags.set", item, {"flags": ["\\Flagged"]}),
                (_t(7), "message.appended", item, {**appended, "flags": ["\\Draft"]}),
                (_t(6), "flags.cleared", item, {"flags": ["\\Draft"]}),  # stamped before the append
                (_t(9), "message.expunged", item, {}),
            )
        )
        assert catalog.flags_at(item, None) == []
        assert (catalog.item(item) or {}).get("flags") == []
        expected = {
            0: None,
            2: ["$early"],
            3: ["\\Seen"],
            4: ["\\Seen"],
            5: ["\\Flagged", "\\Seen"],
            6: [],  # the change stamped 6 (seq 6) is the latest at 6
            7: ["\\Draft"],  # at 7 the second append (time 7) is later than the change (time 6)
            10: ["\\Draft"],
        }
        assert {s: catalog.flags_at(item, _t(s)) for s in expected} == expected
        at = {s: [i["flags"] for i in catalog.items_at("mbox", _t(s))] for s in (2, 3, 5, 6, 7, 8, 9)}
        # the second append replaced the row: the folder holds it from 7 (as it always has)
        assert at == {2: [], 3: [], 5: [], 6: [], 7: [["\\Draft"]], 8: [["\\Draft"]], 9: []}
        history = catalog.dump()["flag_history"]
        assert [(seq, json.loads(flags)) for _, _, seq, flags in history] == [
            (2, ["$early"]),
            (3, ["\\Seen"]),
            (4, ["\\Flagged", "\\Seen"]),
            (5, ["\\Draft"]),
            (6, []),
        ]
        assert catalog.log_seqs(item=item) == [2, 3, 4, 5, 6, 7]
        assert catalog.log_seqs(item="mbox") == [1]
        assert catalog.log_seqs(mailbox_id="mbox") == [1, 2, 3, 4, 5, 6, 7]
        assert catalog.folder_versions(["mbox"]) == {"mbox": 7}
    finally:
        catalog.close()


def test_blob_ids_sharing_the_index_prefix_stay_apart(tmp_path):
    """The blob index keeps 8 bytes of each id: two ids alike in those are still two blobs."""
    one, two = ("sha256:" + "5a" * 8 + tail * 24 for tail in ("01", "02"))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        catalog.apply(
            _entries(
                (_t(1), "folder.created", "mbox", {"name": "user/a/INBOX", "uidvalidity": 7}),
                (_t(2), "message.appended", "mbox:7:1", {"blob": one, "size": 1, "message_id": "<a@x>"}),
                (_t(3), "message.appended", "mbox:7:2", {"blob": two, "size": 2, "message_id": "<a@x>"}),
                (_t(4), "retention.purged", "mbox:7:1", {"how": "retention", "rule": "r"}),
            )
        )
        assert [i["item"] for i in catalog.items_by_blob(one)] == ["mbox:7:1"]
        assert [i["item"] for i in catalog.items_by_blob(two)] == ["mbox:7:2"]
        assert {b: [i["item"] for i in v] for b, v in catalog.items_of_blobs([two]).items()} == {
            two: ["mbox:7:2"]
        }
        assert catalog.blobs_referenced([one, two]) == {two}
        assert [i["item"] for i in catalog.items_by_message_id("a@x")] == ["mbox:7:1", "mbox:7:2"]
        assert catalog.items_by_message_id("<b@x>") == []
    finally:
        catalog.close()


def _vacuum_into(path: Path, copy: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("VACUUM INTO ?", (str(copy),))
    finally:
        db.close()


def _unused(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT sum(unused) + (SELECT freelist_count FROM pragma_freelist_count()) FROM dbstat"
        ).fetchone()[0]
    finally:
        db.close()


def test_an_import_that_doubles_the_catalog_leaves_it_compact(tmp_path, spamassassin_dir):
    """Its b-trees written full (a VACUUM): the same bytes a compacted copy has; so has the
    catalog a rebuild writes."""
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "easy-ham-1")[:200]
    boxes = [str(make_maildir(tmp_path / f"box{n}", files)) for n in range(8)]
    assert vaultctl_run(home, "import", *boxes, "--mailbox", "user/{name}/INBOX").code == 0
    path = home / "catalog.sqlite"
    copy = tmp_path / "copy.sqlite"
    _vacuum_into(path, copy)
    assert path.stat().st_size == copy.stat().st_size
    assert _unused(path) == _unused(copy)
    assert vaultctl_run(home, "rebuild").code == 0  # a replay of the whole ledger: compacted too
    assert path.stat().st_size == copy.stat().st_size
    assert _unused(path) == _unused(copy)


def test_compact_rewrites_only_a_catalog_that_at_least_doubled(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        start = catalog.page_count()
        folders = [
            (_t(0), "folder.created", f"m{n}", {"name": f"user/{n}/INBOX", "uidvalidity": 1})
            for n in range(4)
        ]
        appends = [
            (_t(1), "message.appended", f"m{n % 4}:1:{n // 4 + 1}", {"blob": f"sha256:{n:064x}", "size": n})
            for n in range(2000)
        ]
        catalog.apply(_entries(*folders, *appends))
        assert catalog.compact(catalog.page_count()) is False  # not doubled since
        grown, unused = catalog.page_count(), _unused(catalog.path)
        assert catalog.compact(start) is True
        assert catalog.page_count() < grown and _unused(catalog.path) < unused
        assert len(catalog.all_items()) == 2000
    finally:
        catalog.close()
