"""The content-addressed store on both backends, with real mail."""

from __future__ import annotations

import hashlib

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
    stored = store.db.execute(
        f"SELECT sum(length) FROM blobs WHERE blob IN ({','.join('?' * len(later))})", later
    ).fetchone()[0]
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
    before = sorted(store.db.execute("SELECT * FROM blobs").fetchall())
    store.db.execute("DELETE FROM blobs")
    store.db.commit()
    with pytest.raises(ObjectMissing):
        store.get(ids[0])
    store.rebuild_index()
    assert sorted(store.db.execute("SELECT * FROM blobs").fetchall()) == before
    assert store.get(ids[5]) == mail[5]


def test_check_finds_a_missing_pack(make_store, mail):
    store = make_store(dictionary_samples=10_000, pack_size=16 * 1024)
    ids = [store.put(m) for m in mail[:50]]
    store.flush()
    assert store.check(ids) == []
    victim = next(store.backend.list("packs/"))
    store.backend.delete(victim)
    problems = store.check(ids)
    assert problems and all("missing" in p.what for p in problems)
