"""Every format decoder fails only with its own clear error, and mboxrd round-trips exactly."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ingest.collector.test_spool_formats import _index
from vault.ingest.importers import open_source
from vault.ingest.importers.base import SourceError, SourceMessage
from vault.ingest.importers.cyrus import HEADER_MAGIC, CyrusSource, parse_cyrus_header
from vault.ingest.importers.mbox import split_mbox
from vault.mailformat import maildir_flags, mbox_flags, parse_from_line
from vault.restore.targets import MboxTarget

lines = st.lists(
    st.sampled_from(
        [
            b"From a@b Thu Aug 22 12:36:23 2002\n",
            b"From nobody\n",
            b">From x\n",
            b">>From y\n",
            b"Subject: s\n",
            b"\n",
            b"body\r\n",
            b"From \n",
        ]
    )
    | st.binary(max_size=40),
    max_size=30,
)


@given(lines)
def test_mbox_splitter_only_raises_source_error(chunks):
    data = b"".join(c if isinstance(c, bytes) else b"" for c in chunks)
    try:
        for start, end, _ in split_mbox(io.BytesIO(data)):
            assert 0 <= start <= end <= len(data)
    except SourceError:
        pass


@given(st.binary(max_size=120))
def test_from_line_parser_never_crashes(line):
    when = parse_from_line(line)
    assert when is None or when.tzinfo is not None


@given(st.text(max_size=40))
def test_maildir_info_parser_never_crashes(name):
    assert all(f.startswith(("\\", "$")) for f in maildir_flags(name))


@given(st.binary(max_size=300))
def test_cyrus_header_parser_never_crashes(data):
    parse_cyrus_header(data)
    parse_cyrus_header(HEADER_MAGIC + data)


@given(st.binary(max_size=200))
def test_mbox_status_headers_never_crash(data):
    mbox_flags(data)


message_lines = st.lists(
    st.sampled_from(
        ["From me\n", ">From you\n", ">>From x\n", "From", "text\n", "\n", "Subject: x\n", "From  \n"]
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(message_lines, min_size=1, max_size=5))
def test_mboxrd_round_trip(tmp_path_factory, messages):
    bodies = [("Subject: m\n\n" + "".join(m)).encode() for m in messages]
    bodies = [
        b if b.endswith(b"\n") else b + b"\n" for b in bodies
    ]  # mbox keeps only LF-terminated messages exactly
    path = tmp_path_factory.mktemp("mbox") / "m.mbox"
    target = MboxTarget(path)
    for n, b in enumerate(bodies):
        target.add(b, flags=[], internal_date=datetime(2020, 1, 1, tzinfo=UTC), uid=n)
    target.close()
    back = [m.read() for m in open_source(path).scan() if isinstance(m, SourceMessage)]
    assert back == bodies


# cyrus-imapd imap/mailbox.h, written out here rather than taken from the reader under test
CYRUS_SYSTEM_FLAGS = {1: "\\Answered", 2: "\\Flagged", 4: "\\Deleted", 8: "\\Draft", 16: "\\Seen"}
CYRUS_EXPUNGED = 1 << 31
USER_FLAG_NAMES = ("$Work", "Custom2")
CYRUS_DLIST_HEADER = (
    HEADER_MAGIC + b'"quote"\n\t--someone\n'
    b"%(T e N user.jane I fngchpsey72ifuhlby002uup A %(jane lrswipkxtecdan) U ($Work Custom2))\n"
)

cyrus_records = st.dictionaries(
    st.integers(1, 60),
    st.tuples(st.integers(0, 31), st.booleans(), st.integers(0, 7)),  # system flags, expunged, user flag bits
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(cyrus_records, st.one_of(st.none(), st.integers(0, 10_000)), st.binary(max_size=60))
def test_cyrus_folder_reader_maps_the_index_or_names_it(tmp_path_factory, records, flip, junk_header):
    box = tmp_path_factory.mktemp("cyrus")
    header = CYRUS_DLIST_HEADER if flip is None else junk_header
    (box / "cyrus.header").write_bytes(header)
    rows = [
        (uid, 1_700_000_000 + uid, 100, system | (CYRUS_EXPUNGED if gone else 0), user, uid)
        for uid, (system, gone, user) in sorted(records.items())
    ]
    index = bytearray(_index(4242, 99, rows))
    if flip is not None:
        index[flip % len(index)] ^= 0x5A
    (box / "cyrus.index").write_bytes(bytes(index))
    for uid in records:
        (box / f"{uid}.").write_bytes(f"Subject: {uid}\r\n\r\nbody\r\n".encode())

    source = CyrusSource(box)  # never raises on what the files hold
    found = list(source.scan())
    messages: dict[int, SourceMessage] = {}
    for m in found:
        if isinstance(m, SourceMessage):
            assert m.uid is not None, m  # a Cyrus message always has its UID
            messages[m.uid] = m
    index_problems = [
        p for p in found if not isinstance(p, SourceMessage) and p.path == str(box / "cyrus.index")
    ]
    if index_problems:  # fell back to the files alone: all of them, without flags
        assert sorted(messages) == sorted(records) and all(m.flags == [] for m in messages.values())
        assert source.uidvalidity is None
        return
    names = USER_FLAG_NAMES if header == CYRUS_DLIST_HEADER else ()
    present = {uid: v for uid, v in records.items() if not v[1]}
    assert sorted(messages) == sorted(present) and source.count() == len(present)
    if flip is None:
        assert source.uidvalidity == 4242 and source.mailbox_id == "fngchpsey72ifuhlby002uup"
        for uid, (system, _, user) in present.items():
            expected = [n for bit, n in CYRUS_SYSTEM_FLAGS.items() if system & bit]
            expected += [n for i, n in enumerate(names) if user >> i & 1]
            assert sorted(messages[uid].flags) == sorted(expected)
            assert messages[uid].internal_date.timestamp() == 1_700_000_000 + uid
