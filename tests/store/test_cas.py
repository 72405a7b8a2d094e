"""The content-addressed store on both backends, with real mail."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
import zstandard

from tests.fixtures.corpus import message_files
from vault.store.backends.base import Backend, ObjectMissing
from vault.store.backends.local import LocalBackend
from vault.store.backends.s3 import S3Backend
from vault.store.cas import BlobCorrupt, ContentStore


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def make_store(request, tmp_path):
    backend: Backend
    if request.param == "local":
        backend = LocalBackend(tmp_path / "blobs")
    else:
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        backend = S3Backend(
            bucket=bucket, endpoint_url=endpoint.url, access_key_id="t", secret_access_key="t"
        )

    def make(**kw):
        return ContentStore(backend, tmp_path / f"index-{len(kw)}.sqlite", **kw)

    return make


@pytest.fixture(scope="module")
def mail(spamassassin_dir):
    return [f.read_bytes() for f in message_files(spamassassin_dir / "easy-ham-1")[:400]]


def test_round_trip_dedup_and_hash_ids(make_store, mail):
    store = make_store(dictionary_samples=100)
    ids = [store.put(m) for m in mail]
    assert ids == ["sha256:" + hashlib.sha256(m).hexdigest() for m in mail]
    assert store.put(mail[0]) == ids[0]
    store.flush()
    assert all(store.get(i) == m for i, m in zip(ids, mail))
    assert store.stats()["blobs"] == len(set(ids)) + 1  # + the dictionary, itself a blob


def test_dictionary_beats_plain_zstd_and_old_frames_stay_readable(make_store, mail):
    store = make_store(dictionary_samples=100)
    early = [store.put(m) for m in mail[:50]]  # before any dictionary: plain frames
    assert store.ensure_dictionary(mail[:300]) is not None
    later = [store.put(m) for m in mail[300:]]
    store.flush()
    plain = zstandard.ZstdCompressor(level=3)
    plain_size = sum(len(plain.compress(m)) for m in mail[300:])
    stored = sum(m.length for _, m in store.located() if m.blob in set(later))
    print(f"\nwith dictionary {stored} bytes vs plain zstd {plain_size} bytes ({plain_size / stored:.2f}x)")
    assert stored < 0.85 * plain_size
    assert [store.get(i) for i in early] == mail[:50]


def test_the_dictionary_in_use_is_known_and_survives_a_reopen(make_store, mail):
    store = make_store(dictionary_samples=100)
    assert store.dictionary is None
    store.put(mail[0])
    assert store.dictionary is None  # one sample is too few to train on
    trained = store.ensure_dictionary(mail[:300])
    assert trained is not None and store.dictionary == trained
    assert store.ensure_dictionary(mail[300:]) == trained  # never a second one
    store.close()
    again = make_store(dictionary_samples=100)
    assert again.dictionary == trained and again.get(trained)


def test_reads_verify_the_hash(tmp_path, mail):
    store = ContentStore(LocalBackend(tmp_path / "blobs"), tmp_path / "i.sqlite", dictionary_samples=10_000)
    ids = [store.put(m) for m in mail[:20]]
    store.flush()
    pack = next((tmp_path / "blobs" / "packs").rglob("*"))
    pack = [p for p in (tmp_path / "blobs" / "packs").rglob("*") if p.is_file()][0]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x55
    pack.write_bytes(bytes(data))
    bad = 0
    for i in ids:
        try:
            store.get(i)
        except BlobCorrupt as e:
            assert i in str(e)
            bad += 1
    assert bad >= 1
    problems = store.check(ids, read_data=True)
    assert problems and all(p.where.startswith("blob sha256:") for p in problems)


def test_index_rebuilds_from_the_backend_alone(make_store, mail):
    store = make_store(dictionary_samples=100, pack_size=64 * 1024)
    ids = [store.put(m) for m in mail[:200]]
    store.flush()
    before = sorted(store.located())
    assert len(before) == len(set(ids)) + 1 and len({pack for pack, _ in before}) > 3
    store.db.execute("DELETE FROM blobs")
    store.db.commit()
    with pytest.raises(ObjectMissing):
        store.get(ids[0])
    assert store.rebuild_index() == []
    assert sorted(store.located()) == before
    assert store.get(ids[5]) == mail[5]


FIRST_FORMAT = """
CREATE TABLE blobs (blob TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
                    length INTEGER NOT NULL, raw_size INTEGER NOT NULL, dict TEXT);
CREATE INDEX blobs_pack ON blobs(pack);
CREATE TABLE packs (pack TEXT PRIMARY KEY, size INTEGER NOT NULL, members INTEGER NOT NULL);
CREATE TABLE dictionaries (blob TEXT PRIMARY KEY, seq INTEGER NOT NULL);
PRAGMA user_version = 0;
"""


def test_a_location_index_of_the_first_format_is_made_anew_on_open(tmp_path, mail):
    """store-index.sqlite as vaults before its compact format wrote it (sha256: text ids, a
    pack index by pack): opened, it is rebuilt from the pack indexes, the dictionary in use
    kept; a read-only open reads it the same way, in memory."""
    path = tmp_path / "i.sqlite"
    store = ContentStore(LocalBackend(tmp_path / "blobs"), path, dictionary_samples=100, pack_size=64 * 1024)
    ids = [store.put(m) for m in mail[:200]]
    store.close()
    store = ContentStore(LocalBackend(tmp_path / "blobs"), path)
    before, trained = sorted(store.located()), store.dictionary
    assert trained is not None
    store.db.executescript("DROP TABLE blobs; DROP TABLE packs; DROP TABLE dictionaries;" + FIRST_FORMAT)
    store.db.executemany(
        "INSERT INTO blobs VALUES (?,?,?,?,?,?)",
        [(m.blob, pack, m.offset, m.length, m.raw_size, m.dict) for pack, m in before],
    )
    store.db.execute("INSERT INTO dictionaries VALUES (?, 0)", (trained,))
    store.db.commit()
    store.db.close()
    read_only = ContentStore(LocalBackend(tmp_path / "blobs"), path, read_only=True)
    assert sorted(read_only.located()) == before and read_only.dictionary == trained
    read_only.db.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0  # not written
    again = ContentStore(LocalBackend(tmp_path / "blobs"), path)
    assert sorted(again.located()) == before and again.dictionary == trained
    assert again.get(ids[7]) == mail[7]
    assert {r[1]: r[2] for r in again.db.execute("PRAGMA table_info(blobs)")}["blob"] == "BLOB"


def test_a_lost_location_index_is_rebuilt_on_open_and_is_small(tmp_path, mail):
    path = tmp_path / "i.sqlite"
    store = ContentStore(LocalBackend(tmp_path / "blobs"), path, dictionary_samples=100)
    ids = [store.put(m) for m in mail]
    store.flush()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_blob = path.stat().st_size / store.stats()["blobs"]
    print(f"\nstore-index.sqlite: {per_blob:.0f} bytes a blob")
    assert per_blob < 160  # 430 with text ids and an index by pack (400 blobs: a page a table counts)
    before = sorted(store.located())
    store.close()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    again = ContentStore(LocalBackend(tmp_path / "blobs"), path)
    assert sorted(again.located()) == before
    assert again.get(ids[3]) == mail[3]


def test_check_finds_a_missing_pack(make_store, mail):
    store = make_store(dictionary_samples=10_000, pack_size=16 * 1024)
    ids = [store.put(m) for m in mail[:50]]
    store.flush()
    assert store.check(ids) == []
    victim = next(store.backend.list("packs/"))
    store.backend.delete(victim)
    problems = store.check(ids)
    assert problems and all("missing" in p.what for p in problems)


def test_a_blob_another_process_stored_is_not_stored_again(tmp_path, mail):
    backend = LocalBackend(tmp_path / "blobs")
    mine = ContentStore(backend, tmp_path / "index.sqlite")
    theirs = ContentStore(backend, tmp_path / "index.sqlite")
    mine.put(mail[0])
    mine.flush()  # the set of stored blobs is read, and no other writer seen yet
    bid = theirs.put(mail[1])
    theirs.flush()
    mine.put(mail[2])
    mine.flush()  # sees the other commit
    assert mine.exists(bid)
    assert mine.put(mail[1]) == bid
    mine.flush()
    assert mine.stats()["blobs"] == 3
