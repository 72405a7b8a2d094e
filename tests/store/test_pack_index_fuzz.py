"""The pack-index decoder never fails except with PackFormatError, and round-trips."""

from hypothesis import given
from hypothesis import strategies as st

from vault.store.pack import Member, PackFormatError, decode_pack_index, encode_pack_index


@given(st.binary(max_size=300))
def test_garbage_is_a_clear_error(data):
    try:
        decode_pack_index(data)
    except PackFormatError:
        pass


@given(st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 2**20), st.booleans()), max_size=20))
def test_round_trip(sizes):
    members, offset = [], 0
    for n, (length, raw, has_dict) in enumerate(sizes):
        members.append(
            Member(f"sha256:{n:064x}", offset, length, raw, f"sha256:{'d' * 64}" if has_dict else None)
        )
        offset += length
    pack = "a" * 64
    assert decode_pack_index(encode_pack_index(pack, members)) == (pack, members)
