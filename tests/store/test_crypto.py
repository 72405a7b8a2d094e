"""The store's encryption (vault/store/crypto.py, keys.py) through the content store's API."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.corpus import python_email_messages
from vault.model import blob_id
from vault.store.backends.local import LocalBackend
from vault.store.cas import BlobCorrupt, ContentStore
from vault.store.crypto import (
    OBJECT_MAGIC,
    PACK_HEADER,
    AuthenticationFailed,
    EnvelopeError,
    PlainCipher,
    SealedCipher,
)
from vault.store.keys import MasterKey

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
KEY = MasterKey(bytes(range(32)), bytes(range(32, 64)))


def _store(tmp_path, cipher=None, name="store"):
    return ContentStore(
        LocalBackend(tmp_path / name), tmp_path / f"{name}.sqlite", dictionary_samples=5, cipher=cipher
    )


def _objects(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _subjects(files):
    out = []
    for f in files:
        for line in f.read_bytes().splitlines():
            if line.lower().startswith(b"subject:") and len(line) > 16:
                out.append(line[8:].strip())
                break
    return out


def test_nothing_readable_in_the_store(tmp_path):
    files = python_email_messages()[:40]
    store = _store(tmp_path, KEY.cipher())
    bids = [store.put(f.read_bytes()) for f in files]
    store.flush()
    assert store.dictionary is not None  # dictionaries are sealed as well
    objects = _objects(tmp_path / "store")
    assert any("packs/" in str(p) for p in objects)
    assert not any("index/" in str(p) for p in objects)  # each pack holds its index, sealed
    subjects = _subjects(files)
    assert subjects
    for path, data in objects.items():
        assert ZSTD_MAGIC not in data, path
        for s in subjects:
            assert s not in data, (path, s)
        for bid in bids:  # no content hash, in a name or inside an object
            assert bid[7:] not in str(path) and bid[7:].encode() not in data
    assert [store.get(b) for b in bids] == [f.read_bytes() for f in files]
    # the same store unencrypted shows frames and hashes in the clear: the checks above can fail
    plain = _store(tmp_path, name="plain")
    for f in files:
        plain.put(f.read_bytes())
    plain.flush()
    assert any(ZSTD_MAGIC in d for d in _objects(tmp_path / "plain").values())


def test_reads_after_reopen_rebuild_and_repack(tmp_path):
    files = python_email_messages()[:12]
    store = _store(tmp_path, KEY.cipher())
    bids = [store.put(f.read_bytes()) for f in files]
    store.flush()
    store.rebuild_index()
    assert [store.get(b) for b in bids] == [f.read_bytes() for f in files]
    store.delete_blobs(bids[:3])  # the survivors are re-sealed in a new pack
    store.close()
    again = _store(tmp_path, KEY.cipher())
    assert [again.get(b) for b in bids[3:]] == [f.read_bytes() for f in files[3:]]
    assert again.check(bids[3:], read_data=True) == []
    # the wrong key opens nothing, and says so
    with pytest.raises(BlobCorrupt, match="authentication failed"):
        _store(tmp_path, MasterKey.new().cipher()).get(bids[4])  # (its dictionary, first)


def test_the_trailer_is_the_pack_index_and_costs_what_the_index_object_did(tmp_path):
    """Encrypted, a store is its unencrypted twin plus a 16-byte tag a record less what the
    pack index already says of its frame (magic, dictionary id, content size: 5 to 12 bytes),
    and 28 bytes a pack (header, trailer tag and length), give or take a varint byte: there
    are no index/ objects."""
    files = python_email_messages()[:60]
    sizes, located = {}, {}
    for name, cipher in (("plain", None), ("sealed", KEY.cipher())):
        store = ContentStore(
            LocalBackend(tmp_path / name),
            tmp_path / f"{name}.sqlite",
            dictionary_samples=20,
            pack_size=8192,
            cipher=cipher,
        )
        for f in files:
            store.put(f.read_bytes())
        store.flush()
        stats = store.stats()
        located[name] = {m.blob: m for _, m in store.located()}
        store.close()
        sizes[name] = sum(len(d) for d in _objects(tmp_path / name).values())
    assert not (tmp_path / "sealed" / "index").exists() and (tmp_path / "plain" / "index").is_dir()
    blobs, packs = stats["blobs"], stats["packs"]
    assert packs > 2 and located["plain"].keys() == located["sealed"].keys()
    saved = {b: m.length + 16 - located["sealed"][b].length for b, m in located["plain"].items()}
    assert all(5 <= n <= 12 for n in saved.values()), saved
    assert sum(n >= 9 for n in saved.values()) > blobs / 2  # most frames need the dictionary
    least = 16 * blobs - sum(saved.values()) + (len(PACK_HEADER) + 16 + 4) * packs
    print(f"\n{blobs} blobs, {packs} packs: {sizes['plain']} bytes plain, {sizes['sealed']} encrypted")
    assert least <= sizes["sealed"] - sizes["plain"] <= least + blobs + packs


def test_a_pack_of_the_first_format_whole_frames_still_reads(tmp_path):
    """Packs written before records were stripped (header version 1) hold whole frames:
    read, checked and repacked as they are."""
    import zstandard

    from vault.store.crypto import PACK_MAGIC
    from vault.store.pack import Member
    from vault.store.pack_indexes import Trailers, pack_key

    cipher = KEY.cipher()
    datas = [f.read_bytes() for f in python_email_messages()[:6]]
    frames = [zstandard.ZstdCompressor(level=3).compress(d) for d in datas]
    pack = cipher.pack_name(b"".join(frames))
    out, members = bytearray(PACK_MAGIC + b"\x01\0\0\0"), []
    for data, frame in zip(datas, frames):
        record = cipher.seal_record(pack, pack_key(pack), len(out), blob_id(data), frame)
        members.append(Member(blob_id(data), len(out), len(record), len(data), None))
        out += record
    backend = LocalBackend(tmp_path / "store")
    backend.put(pack_key(pack), Trailers(backend, cipher).pack_object(pack, bytes(out), members))
    store = _store(tmp_path, cipher)  # a new location index: made from that pack's trailer
    assert [store.get(blob_id(d)) for d in datas] == datas
    bids = [blob_id(d) for d in datas]
    assert store.check(bids, read_data=True) == [] and store.check_pack_indexes(bids, read_data=True) == []
    store.delete_blobs(bids[:2])  # the survivors go into a pack of the current format
    assert [store.get(b) for b in bids[2:]] == datas[2:]
    (new_pack,) = store.pack_names()
    assert (tmp_path / "store" / pack_key(new_pack)).read_bytes()[: len(PACK_HEADER)] == PACK_HEADER
    assert store.rebuild_index() == [] and [store.get(b) for b in bids[2:]] == datas[2:]


def test_a_lost_location_index_is_rebuilt_from_the_trailers(tmp_path):
    files = python_email_messages()[:40]
    store = _store(tmp_path, KEY.cipher())
    store.pack_size = 4096
    bids = [store.put(f.read_bytes()) for f in files]
    store.flush()
    before = sorted(store.located())
    store.close()
    assert len({pack for pack, _ in before}) > 2
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"store.sqlite{suffix}").unlink(missing_ok=True)
    again = _store(tmp_path, KEY.cipher())  # a new file: made from the packs' trailers on open
    assert sorted(again.located()) == before
    assert [again.get(b) for b in bids] == [f.read_bytes() for f in files]
    assert again.check_pack_indexes(bids, read_data=True) == []


def _flipped_trailer(tmp_path, at: int):
    """An encrypted store of 30 messages in 4 KiB packs, the byte at ``at`` (from the end) of
    its first pack flipped: (store, blob ids, that pack, the blobs in it, its file, the
    messages)."""
    files = python_email_messages()[:30]
    store = _store(tmp_path, KEY.cipher())
    store.pack_size = 4096
    bids = [store.put(f.read_bytes()) for f in files]
    store.flush()
    key = next(store.backend.list("packs/"))
    pack = key.rsplit("/", 1)[-1]
    path = tmp_path / "store" / key
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    return store, bids, pack, {m.blob for p, m in store.located() if p == pack}, path, files


@pytest.mark.parametrize("where", ["trailer", "length"])
def test_a_flipped_byte_in_the_trailer_is_a_damaged_pack_named_and_rewritten(tmp_path, where):
    store, bids, pack, in_it, _, _ = _flipped_trailer(tmp_path, -10 if where == "trailer" else -1)
    problems = store.check_pack_indexes(bids)
    damaged = [p for p in problems if p.where == f"pack {pack}"]
    assert len(damaged) == 1 and "damaged" in damaged[0].what and "verify --repair" in damaged[0].what
    assert {p.where for p in problems} - {f"pack {pack}"} == {f"blob {b}" for b in in_it}  # not listed
    assert all(store.get(b) for b in in_it)  # its records still authenticate, one by one
    # a rebuild of the location index cannot place them: it says which pack, and goes on
    assert store.rebuild_index() == [pack]
    assert not any(p == pack for p, _ in store.located()) and len(list(store.located())) > 0
    assert {p.where for p in store.check(in_it)} == {f"blob {b}" for b in in_it}
    (damaged,) = [p for p in store.check_pack_indexes(bids) if p.where == f"pack {pack}"]
    assert "no blob of it can be read" in damaged.what and "repair" not in damaged.what


def test_a_damaged_trailer_is_repaired_from_the_location_index(tmp_path):
    store, bids, pack, in_it, path, files = _flipped_trailer(tmp_path, -10)
    assert store.repair_pack_indexes() == [pack]
    assert not path.exists() and pack not in store.pack_names()
    assert store.check_pack_indexes(bids, read_data=True) == []
    assert store.check(bids, read_data=True) == []
    moved = {m.blob: p for p, m in store.located() if m.blob in in_it}
    assert len(moved) == len(in_it) and pack not in moved.values()
    assert store.rebuild_index() == []
    assert [store.get(b) for b in bids] == [f.read_bytes() for f in files]
    # a pack with a damaged record too is not rewritten: its damage is never copied
    key = next(store.backend.list("packs/"))
    path = tmp_path / "store" / key
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    data[len(PACK_HEADER) + 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert store.repair_pack_indexes() == [] and path.exists()


def test_dedup_still_works(tmp_path):
    store = _store(tmp_path, KEY.cipher())
    data = python_email_messages()[0].read_bytes()
    assert store.put(data) == store.put(data) == blob_id(data)
    store.flush()
    assert store.put(data) == blob_id(data)
    store.flush()
    assert store.stats()["blobs"] == 1 and store.stats()["packs"] == 1


def test_flipped_byte_is_an_authentication_failure_naming_the_pack(tmp_path):
    store = _store(tmp_path, KEY.cipher())
    bids = [store.put(f.read_bytes()) for f in python_email_messages()[:5]]
    store.flush()
    victim = next(store.backend.list("packs/"))
    pack = victim.rsplit("/", 1)[-1]
    path = tmp_path / "store" / victim
    data = bytearray(path.read_bytes())
    data[len(PACK_HEADER) + 3] ^= 0x01  # inside the first record
    path.write_bytes(bytes(data))
    problems = store.check(bids, read_data=True)
    assert len(problems) == 1 and "authentication failed" in problems[0].what
    assert pack in problems[0].what
    with pytest.raises(BlobCorrupt, match=f"pack {pack}: authentication failed"):
        store.get(bids[0])
    assert store.get(bids[1])  # the others still read


def test_objects_cannot_be_swapped():
    c = KEY.cipher()
    sealed = c.seal_object("index/aa", b"payload")
    assert c.open_object("index/aa", sealed) == b"payload"
    with pytest.raises(AuthenticationFailed, match="index/bb"):
        c.open_object("index/bb", sealed)
    record = c.seal_record("p1", "packs/p1", 8, "sha256:" + "a" * 64, b"frame")
    with pytest.raises(AuthenticationFailed):
        c.open_record("p1", "packs/p1", 8, "sha256:" + "b" * 64, record)  # another blob's slot
    with pytest.raises(AuthenticationFailed):
        c.open_record("p1", "packs/p1", 24, "sha256:" + "a" * 64, record)  # moved in the pack
    with pytest.raises(AuthenticationFailed):
        c.open_record("p2", "packs/p2", 8, "sha256:" + "a" * 64, record)  # moved to another pack


def test_pack_names_are_keyed():
    frames = b"some frames"
    assert KEY.cipher().pack_name(frames) == KEY.cipher().pack_name(frames)  # same pack, same name
    assert KEY.cipher().pack_name(frames) != PlainCipher().pack_name(frames)
    assert MasterKey.new().cipher().pack_name(frames) != KEY.cipher().pack_name(frames)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_envelope_decoder_random_bytes(data):
    for blob in (data, OBJECT_MAGIC + b"\x01" + data, OBJECT_MAGIC + data):
        with pytest.raises((EnvelopeError, AuthenticationFailed)):
            KEY.cipher().open_object("index/x", blob)
    with pytest.raises((EnvelopeError, AuthenticationFailed)):
        KEY.cipher().open_record("p", "packs/p", 8, "sha256:" + "0" * 64, data)


_SEALED = SealedCipher(KEY.data_key, KEY.id_key).seal_object("index/x", os.urandom(64))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(_SEALED) - 1),
    st.integers(min_value=1, max_value=255),
    st.integers(min_value=0, max_value=len(_SEALED)),
    st.binary(max_size=8),
)
def test_envelope_decoder_mangled(pos, xor, cut, extra):
    flipped = bytearray(_SEALED)
    flipped[pos] ^= xor
    for bad in (bytes(flipped), _SEALED[:cut] + extra):
        if bad == _SEALED:  # cut, then the same bytes put back (os.urandom made them): not mangled
            continue
        with pytest.raises((EnvelopeError, AuthenticationFailed)):
            KEY.cipher().open_object("index/x", bad)
