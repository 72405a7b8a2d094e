"""The segment decoders never fail except with their own errors, and round-trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.store import segment as fmt
from vault.store.ledger import (
    ZERO,
    Entry,
    Ledger,
    LedgerError,
    canonical,
    chain_hash,
    entry_from_fields,
    sealed_entries,
    stored_fields,
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# data that looks like the fields around it: a "prev" key, quotes, a "seq" after it
_data = st.dictionaries(
    st.sampled_from(["prev", "seq", "hash", "a", 'x"y', "time"]) | st.text(max_size=6), _json
)


def _entry(seq: int, prev: str, data: dict, item, actor, kind: str) -> Entry:
    fields = {"seq": seq, "time": "2026-11-01T12:00:00.000000Z", "kind": kind, "item": item, "actor": actor}
    e = Entry(**fields, data=data, prev=prev, hash="")
    object.__setattr__(e, "hash", chain_hash(prev, e.canonical()))
    return e


@given(st.binary(max_size=400))
def test_garbage_index_is_a_segment_error(data):
    try:
        fmt.decode_index(data)
    except fmt.SegmentError:
        pass


@given(st.binary(max_size=400))
def test_garbage_sealed_segment_is_a_ledger_error(data):
    try:
        sealed_entries(data)
    except LedgerError:
        pass


@given(st.binary(max_size=200))
def test_garbage_lines_are_segment_errors(line):
    for decode in (fmt.parse_header, fmt.decode_fields):
        try:
            decode(line)
        except fmt.SegmentError:
            pass


@settings(max_examples=200)
@given(_data, st.none() | st.text(max_size=10), st.none() | st.text(max_size=10), st.text(max_size=10))
def test_an_entry_stored_without_prev_reads_back_with_the_same_canonical_form_and_hash(
    data, item, actor, kind
):
    prev = "ab" * 32
    entry = _entry(7, prev, data, item, actor, kind)
    line = stored_fields(entry)
    assert line == canonical({k: v for k, v in entry.fields().items() if k != "prev"})
    back = entry_from_fields(fmt.decode_fields(line), prev)
    assert back.canonical() == entry.canonical() and back.hash == entry.hash


@settings(max_examples=50, deadline=None)
@given(st.lists(_data, min_size=1, max_size=fmt.FRAME_ENTRIES * 2 + 3), st.integers(1, 10**6))
def test_a_sealed_segment_round_trips(datas, first):
    entries, prev = [], ZERO
    for i, data in enumerate(datas):
        entries.append(_entry(first + i, prev, data, None, "root", "k"))
        prev = entries[-1].hash
    blob = fmt.encode_sealed(first, [stored_fields(e) + b"\n" for e in entries], [e.prev for e in entries])
    index = fmt.decode_index(blob)
    assert index.first == first and index.count == len(entries)
    assert all(f.count <= fmt.FRAME_ENTRIES for f in index.frames)
    back = sealed_entries(blob, f"{first:012d}.jsonl.zst")
    assert [e.canonical() for e in back] == [e.canonical() for e in entries]
    assert [e.hash for e in back] == [e.hash for e in entries]


@settings(max_examples=15, deadline=None)
@given(st.lists(_data, min_size=1, max_size=40), st.integers(1, 4))
def test_any_entry_reads_back_by_seq_from_plain_and_sealed_segments(tmp_path_factory, datas, per_commit):
    base = tmp_path_factory.mktemp("bySeq")
    led = Ledger.open(base / "ledger", key_path=base / "key", origin="t/l", segment_max_bytes=600)
    made = []
    for i, data in enumerate(datas):
        made.append(led.append("k", item=f"i{i}", data=data).to_json())
        if i % per_commit == 0:
            led.commit()
    led.commit()
    led.close()
    reader = Ledger.open(base / "ledger", key_path=base / "key", origin="t/l", writable=False)
    assert [reader.get(seq).to_json() for seq in range(len(made), 0, -1)] == made[::-1]
    assert [e.to_json() for e in reader.entries()] == made
