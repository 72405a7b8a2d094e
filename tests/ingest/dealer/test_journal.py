"""The stream mode's write-ahead journal: recovery past the checkpoint, torn writes, wrapping."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.ingest.dealer.journal import DATA_START, Journal, JournalError, JournalFull


def reopened(path, size):
    j = Journal(path, size)
    try:
        return j.recover()
    finally:
        j.close()


def test_records_past_the_checkpoint_come_back_in_order(tmp_path):
    path = tmp_path / "journal"
    j = Journal(path, 1 << 20)
    marks = j.append([b"one", b"two"]) + j.append([b"three"])
    j.checkpoint(*marks[0])
    j.close()
    assert reopened(path, 1 << 20) == [b"two", b"three"]


def test_a_fresh_journal_holds_nothing(tmp_path):
    assert reopened(tmp_path / "j", 1 << 20) == []


def test_a_torn_record_ends_recovery(tmp_path):
    path = tmp_path / "journal"
    j = Journal(path, 1 << 20)
    marks = j.append([b"a" * 100, b"b" * 100, b"c" * 100])
    j.close()
    with open(path, "r+b") as f:
        f.seek(marks[1][1] - 10)  # inside the second record's payload
        f.write(b"X")
    assert reopened(path, 1 << 20) == [b"a" * 100]


def test_recovery_follows_the_wrap(tmp_path):
    path, size = tmp_path / "journal", 64 * 1024
    j = Journal(path, size)
    payloads = [bytes([i % 251]) * 3000 for i in range(60)]  # ~3 times round
    for i, p in enumerate(payloads):
        mark = j.append([p])[0]
        if i < 55:
            j.checkpoint(*mark)
    j.close()
    assert reopened(path, size) == payloads[55:]


def test_full_journal_refuses_rather_than_overwrites(tmp_path):
    path, size = tmp_path / "journal", 64 * 1024
    j = Journal(path, size)
    kept = []
    with pytest.raises(JournalFull):
        for i in range(100):
            j.append([bytes([i]) * 4000])
            kept.append(bytes([i]) * 4000)
    j.close()
    assert reopened(path, size) == kept


def test_damaged_header_is_a_clear_error(tmp_path):
    path = tmp_path / "journal"
    Journal(path, 1 << 20).close()
    with open(path, "r+b") as f:
        f.write(b"garbage!")
    with pytest.raises(JournalError, match="damaged checkpoint"):
        Journal(path, 1 << 20)


ops = st.lists(
    st.one_of(
        st.lists(st.binary(min_size=0, max_size=2500), min_size=1, max_size=4).map(lambda b: ("append", b)),
        st.integers(0, 1000).map(lambda k: ("checkpoint", k)),
        st.just(("reopen", None)),
    ),
    max_size=40,
)


@given(ops)
@settings(max_examples=60, deadline=None)
def test_recovery_matches_a_model(tmp_path_factory, operations):
    path, size = tmp_path_factory.mktemp("j") / "journal", 32 * 1024
    j = Journal(path, size)
    j.recover()
    pending: list[tuple[tuple[int, int], bytes]] = []
    for op, arg in operations:
        if op == "append":
            try:
                marks = j.append(arg)
            except JournalFull:
                continue
            pending += list(zip(marks, arg))
        elif op == "checkpoint" and pending:
            k = arg % len(pending)
            j.checkpoint(*pending[k][0])
            pending = pending[k + 1 :]
        elif op == "reopen":
            j.close()
            j = Journal(path, size)
            assert j.recover() == [p for _, p in pending]
            # recovered records are re-spooled by the caller, which then checkpoints them
            j.checkpoint(j.seq, j.pos)
            pending = []
    j.close()
    assert reopened(path, size) == [p for _, p in pending]


@given(st.binary(min_size=1, max_size=3000), st.integers(0, 60_000))
@settings(max_examples=60, deadline=None)
def test_garbage_in_the_data_area_never_breaks_recovery(tmp_path_factory, junk, at):
    path, size = tmp_path_factory.mktemp("g") / "journal", 64 * 1024
    j = Journal(path, size)
    j.append([b"first", b"second"])
    os.pwrite(j.fd, junk, DATA_START + at % (size - DATA_START - len(junk)))
    j.close()
    got = reopened(path, size)
    assert got in ([], [b"first"], [b"first", b"second"])
