"""The pack-index decoder never fails except with PackFormatError, round-trips, reads the
version 2 indexes of older stores, and has one encoding for each index it accepts."""

import hashlib
import json

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.store.pack import (
    MAGIC,
    Member,
    PackFormatError,
    decode_pack_index,
    encode_pack_index,
    restore_frame,
    strip_frame,
)

PACK = "a" * 64
DICTS = [f"sha256:{c * 64}" for c in "de"]

members_strategy = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32),
        st.integers(0, 2**20) | st.just(0),  # the gap before it: mostly none
        st.integers(0, 2**40),
        st.integers(0, 2**62),
        st.sampled_from([None, *DICTS]),
    ),
    max_size=20,
)


def _members(spec) -> list[Member]:
    out, end = [], 0
    for blob, gap, length, raw, d in spec:
        out.append(Member("sha256:" + blob.hex(), end + gap, length, raw, d))
        end += gap + length
    return out


@given(st.binary(max_size=300))
def test_garbage_is_a_clear_error(data):
    for blob in (data, MAGIC + data, MAGIC + b"\x03" + data, zstandard.compress(data)):
        try:
            decode_pack_index(blob)
        except PackFormatError:
            pass


@given(members_strategy)
def test_round_trip(spec):
    members = _members(spec)
    data = encode_pack_index(PACK, members)
    assert decode_pack_index(data) == (PACK, members)
    contiguous = [m._replace(offset=sum(x.length for x in members[:i])) for i, m in enumerate(members)]
    assert len(encode_pack_index(PACK, contiguous)) <= len(data)  # implied offsets cost nothing


@settings(max_examples=500)
@given(members_strategy, st.data())
def test_a_mangled_index_is_an_error_or_exactly_what_it_encodes(spec, draw):
    """Flipped, cut or lengthened: refused, or (a flip that still parses, as a flipped blob
    id byte does) decoded to the index whose one encoding is these very bytes."""
    data = encode_pack_index(PACK, _members(spec))
    pos = draw.draw(st.integers(0, len(data) - 1))
    flipped = bytearray(data)
    flipped[pos] ^= draw.draw(st.integers(1, 255))
    cut = data[: draw.draw(st.integers(0, len(data) - 1))]
    longer = data + draw.draw(st.binary(min_size=1, max_size=4))
    for bad in (bytes(flipped), cut, longer):
        try:
            pack, members = decode_pack_index(bad)
        except PackFormatError:
            continue
        assert encode_pack_index(pack, members) == bad


@pytest.mark.parametrize(
    "bad",
    [
        MAGIC + b"\x02" + bytes(32) + b"\0\0",  # another version
        MAGIC + b"\x03" + bytes(32) + b"\x80\x00\x00",  # a varint not in its shortest form
        MAGIC + b"\x03" + bytes(32) + b"\x00\x01" + bytes(32) + b"\x01\x00\x01\x01",  # a gap of 0
        MAGIC + b"\x03" + bytes(32) + b"\x00\x01" + bytes(32) + b"\x02\x01\x01",  # slot of no dict
        MAGIC + b"\x03" + bytes(32) + b"\x01" + bytes(32) + b"\x00",  # a dictionary none needs
        MAGIC + b"\x03" + bytes(32) + b"\x00\xff\xff\xff\x7f",  # more members than bytes
        MAGIC + b"\x03" + bytes(32) + b"\x00\x01" + bytes(32) + b"\x00" + b"\xff" * 9 + b"\x01",
    ],
)
def test_each_field_is_checked(bad):
    with pytest.raises(PackFormatError):
        decode_pack_index(bad)


def _v2(pack: str, members: list[Member]) -> bytes:
    """A version 2 index as stores before version 3 wrote them."""
    dicts = sorted({m.dict for m in members if m.dict})
    body = {
        "version": 2,
        "pack": pack,
        "dicts": dicts,
        "members": [
            [m.blob[7:], m.offset, m.length, m.raw_size, dicts.index(m.dict) if m.dict else -1]
            for m in members
        ],
    }
    return zstandard.ZstdCompressor(level=9).compress(json.dumps(body).encode())


@given(members_strategy)
def test_version_2_indexes_still_decode(spec):
    members = _members(spec)
    assert decode_pack_index(_v2(PACK, members)) == (PACK, members)


def test_version_3_is_smaller_than_version_2():
    ids = [hashlib.sha256(bytes([n])).digest() for n in range(200)]  # as random as real ones
    members = _members([(b, 8 if n == 0 else 0, 1500 + n, 4000 + n, DICTS[0]) for n, b in enumerate(ids)])
    v2, v3 = len(_v2(PACK, members)), len(encode_pack_index(PACK, members))
    print(f"\n200 members: version 2 {v2} bytes, version 3 {v3} bytes")
    assert v3 < 0.85 * v2 and v3 <= 40 * 200 + 80


_DICT = zstandard.train_dictionary(
    2048, [b"Subject: note %d\nFrom: a@b.example\n\n" % n * 4 for n in range(300)]
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70000), st.booleans(), st.integers(1, 19))
def test_a_stripped_frame_restores_to_its_bytes(data, with_dict, level):
    """An encrypted pack's records hold frames without what the index says (magic,
    dictionary id, content size): made whole again byte for byte, whatever the sizes."""
    c = (
        zstandard.ZstdCompressor(level=level, dict_data=_DICT)
        if with_dict
        else zstandard.ZstdCompressor(level=level)
    )
    frame, dict_id = c.compress(data), _DICT.dict_id() if with_dict else 0
    stripped = strip_frame(frame, dict_id, len(data))
    assert len(stripped) <= len(frame) - 5 and restore_frame(stripped, dict_id, len(data)) == frame
    with pytest.raises(ValueError):
        strip_frame(frame, dict_id + 1, len(data))
    with pytest.raises(ValueError):
        strip_frame(frame, dict_id, len(data) + 1)


@given(st.binary(max_size=40), st.integers(0, 2**32 - 1), st.integers(0, 2**40))
def test_restoring_garbage_is_a_clear_error_or_bytes(data, dict_id, raw_size):
    try:
        assert restore_frame(data, dict_id, raw_size)[:4] == b"\x28\xb5\x2f\xfd"
    except PackFormatError:
        pass
