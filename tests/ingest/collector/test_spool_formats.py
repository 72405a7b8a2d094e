"""Decoders of what the collector reads: IMAP/dlist syntax, cyrus.header, cyrus.index.

Known-good inputs are the bytes a real Cyrus 3.6 wrote (seen in /tmp spools while building
this, copied here) and index files spelled out from Cyrus's imap/mailbox.h layout; the real
server's own view is compared in test_collector_cyrus.py.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.ingest.cyrus import syntax as imap_syntax
from vault.ingest.cyrus.spool import (
    HEADER_MAGIC,
    CyrusSpool,
    MailboxNotFound,
    MessageGone,
    SpoolFormatError,
    external_name,
    parse_index,
    parse_mailbox_header,
    read_imapd_conf,
)

# cyrus.header exactly as Cyrus 3.6.1 wrote it for user/alice after one APPEND with $Custom
REAL_HEADER = (
    HEADER_MAGIC + b'"The best thing about this system was that it had lots of goals."\n'
    b"\t--Jim Morris on Andrew\n"
    b"%(T e N user.alice I j5sif3u18qdgsqmb6t2ndrve A %(alice lrswipkxtecdan) U ($Custom))\n"
)


# ---------------------------------------------------------------- imap syntax


def test_imap_syntax_values():
    assert imap_syntax.parse(b'a "b c" NIL (d (e)) %(k v K2 "v 2")') == [
        "a",
        "b c",
        None,
        ["d", ["e"]],
        {"k": "v", "K2": "v 2"},
    ]
    assert imap_syntax.parse(b'("x" {5}\r\nab\r\nc "y\\"z")') == [["x", "ab\r\nc", 'y"z']]
    assert imap_syntax.parse(b"{3+}\r\nabc") == ["abc"]


@pytest.mark.parametrize(
    "bad",
    [
        b"(",
        b")",
        b'"open',
        b"{5}\r\nab",
        b"{x}\r\nab",
        b"%(k)",
        b"{3}abc",
        b'"a\nb"',
        b"(" * 100 + b")" * 100,
    ],
)
def test_imap_syntax_rejects_with_offset(bad):
    with pytest.raises(imap_syntax.SyntaxProblem, match="offset"):
        imap_syntax.parse(bad)


def _encode(value) -> bytes:
    if value is None:
        return b"NIL"
    if isinstance(value, list):
        return b"(" + b" ".join(_encode(v) for v in value) + b")"
    if isinstance(value, dict):
        return b"%(" + b" ".join(_encode(k) + b" " + _encode(v) for k, v in value.items()) + b")"
    raw = value.encode()
    return b"{%d}\r\n" % len(raw) + raw  # a literal carries anything


_values = st.recursive(
    st.none() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@given(st.lists(_values, max_size=4))
def test_imap_syntax_round_trip(values):
    assert imap_syntax.parse(b" ".join(_encode(v) for v in values)) == values


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_imap_syntax_fuzz_only_raises_syntax_problem(data):
    try:
        imap_syntax.parse(data)
    except imap_syntax.SyntaxProblem:
        pass


def test_join_response_inlines_imaplib_literals():
    parts = [(b'user/alice ("/shared/comment" {5}', b"a\r\nbc"), b")"]
    assert imap_syntax.parse(imap_syntax.join_response(parts)) == [
        "user/alice",
        ["/shared/comment", "a\r\nbc"],
    ]


# ---------------------------------------------------------------- cyrus.header


def test_real_header():
    h = parse_mailbox_header(REAL_HEADER)
    assert (h.name, h.uniqueid, h.acl, h.user_flags) == (
        "user/alice",
        "j5sif3u18qdgsqmb6t2ndrve",
        {"alice": "lrswipkxtecdan"},
        ("$Custom",),
    )
    assert not h.deleted


def test_header_names_and_deleted():
    raw = HEADER_MAGIC + b"q\n\tq\n%(T e N DELETED.user.alice.Sub^dir.6B0310A8 I x1 A %())\n"
    h = parse_mailbox_header(raw, "somewhere/cyrus.header")
    assert h.name == "DELETED/user/alice/Sub.dir/6B0310A8" and h.deleted
    assert external_name("user.alice.a^b.c") == "user/alice/a.b/c"


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"garbage", "bad magic"),
        (HEADER_MAGIC + b"no record", "no dlist"),
        (HEADER_MAGIC + b"%(T e I x)", "name"),
        (HEADER_MAGIC + b"%(N a I x A (b))", "ACL"),
        (HEADER_MAGIC + b"%(N a I x U %(a b))", "user flags"),
        (HEADER_MAGIC + b"%(N a I x", "offset"),
    ],
)
def test_bad_headers_name_the_file(raw, why):
    with pytest.raises(SpoolFormatError, match=f"hdr-file.*{why}"):
        parse_mailbox_header(raw, "hdr-file")


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_header_fuzz(tail):
    try:
        parse_mailbox_header(HEADER_MAGIC + b"%(" + tail)
    except SpoolFormatError:
        pass


# ---------------------------------------------------------------- cyrus.index


def _record(uid, internal_date, size, system_flags, user_flags, modseq) -> bytes:
    # imap/mailbox.h, minor version 17: 112 bytes, CRC32 of the first 108 last
    body = struct.pack(
        ">IIIIIIII", uid, internal_date, internal_date - 50, size, size // 2, internal_date, 0, internal_date
    )
    body += struct.pack(">I", system_flags)
    body += struct.pack(">IIII", *[(user_flags >> (32 * i)) & 0xFFFFFFFF for i in range(4)])
    body += struct.pack(">II", internal_date, 11) + b"\x01" * 20
    body += struct.pack(">QQQI", modseq, 0, modseq, 0)
    assert len(body) == 108
    return body + struct.pack(">I", zlib.crc32(body))


def _index(uidvalidity, highestmodseq, records) -> bytes:
    header = bytearray(156)
    struct.pack_into(">IIIIII", header, 0, 0, 0, 17, 160, 112, len(records))
    struct.pack_into(">I", header, 28, max([r[0] for r in records], default=0))
    struct.pack_into(">I", header, 44, uidvalidity)
    struct.pack_into(">Q", header, 68, highestmodseq)
    header += struct.pack(">I", zlib.crc32(bytes(header)))
    return bytes(header) + b"".join(_record(*r) for r in records)


EXPUNGED = 1 << 31


def test_index_records_flags_and_expunged():
    data = _index(
        1795362776,
        9,
        [
            (1, 1795362781, 375, 0, 0, 2),
            (2, 1792770781, 51, 0x10, 0b1, 3),
            (3, 1795362790, 10, EXPUNGED | 0x4 | 0x2, 0, 9),
            (4, 1795362791, 11, 0x1 | 0x8, 1 << 100, 8),
        ],
    )
    index = parse_index(data)
    assert (index.uidvalidity, index.highestmodseq, index.last_uid) == (1795362776, 9, 4)
    names = ("$Custom",) + tuple(f"k{i}" for i in range(1, 128))
    assert [(r.uid, r.flags(names), r.modseq, r.size) for r in index.present] == [
        (1, [], 2, 375),
        (2, ["\\Seen", "$Custom"], 3, 51),
        (4, ["\\Answered", "\\Draft", "k100"], 8, 11),
    ]
    assert index.records[2].expunged


def test_index_every_flipped_byte_is_detected_or_harmless():
    data = _index(7, 3, [(1, 1795362781, 375, 0x10, 0, 2)])
    good = parse_index(data)
    for offset in range(len(data)):
        broken = bytearray(data)
        broken[offset] ^= 0x41
        try:
            parsed = parse_index(bytes(broken))
        except SpoolFormatError:
            continue
        assert parsed == good, f"byte {offset} changed the result without an error"


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda d: d[:100], "too short"),
        (lambda d: d[:8] + struct.pack(">I", 18) + d[12:], "version 18"),
        (lambda d: d[:-5], "promises 1 records"),
    ],
)
def test_bad_index_names_the_file(mutate, why):
    with pytest.raises(SpoolFormatError, match=f"idx-file.*{why}"):
        parse_index(mutate(_index(7, 3, [(1, 1795362781, 375, 0x10, 0, 2)])), "idx-file")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_index_fuzz(data):
    try:
        parse_index(data)
    except SpoolFormatError:
        pass


# ---------------------------------------------------------------- the spool


def test_spool_paths_from_imapd_conf(tmp_path):
    conf = tmp_path / "imapd.conf"
    conf.write_text(
        f"# comment\nconfigdirectory: /x\npartition-default: {tmp_path / 'p1'}\n"
        f"partition-second: {tmp_path / 'p2'}\n"
    )
    box = tmp_path / "p2" / "uuid" / "a" / "b" / "ab12"
    box.mkdir(parents=True)
    (box / "7.").write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    (box / "cyrus.header").write_bytes(REAL_HEADER)
    spool = CyrusSpool.from_imapd_conf(conf)
    data, when = spool.read_message("ab12", 7)
    assert data == b"Subject: hi\r\n\r\nbody\r\n" and when.endswith("Z")
    assert spool.header("ab12").name == "user/alice"
    with pytest.raises(MessageGone, match="spool file gone"):
        spool.read_message("ab12", 8)
    for bad in ("zz99", "../etc", "a/b", ""):
        with pytest.raises(MailboxNotFound):
            spool.read_message(bad, 1)
    with pytest.raises(MailboxNotFound):
        spool.index("ab12")  # no cyrus.index


def test_imapd_conf_problems_are_named(tmp_path):
    from vault.ingest.cyrus.spool import CyrusSpoolError

    with pytest.raises(CyrusSpoolError, match="missing.conf"):
        read_imapd_conf(tmp_path / "missing.conf")
    conf = tmp_path / "imapd.conf"
    conf.write_text("servername: x\n")
    with pytest.raises(CyrusSpoolError, match="no partition"):
        CyrusSpool.from_imapd_conf(conf)
    conf.write_text("partition-default: /x\nmailbox_legacy_dirs: yes\n")
    with pytest.raises(CyrusSpoolError, match="legacy"):
        CyrusSpool.from_imapd_conf(conf)
    # Debian's imapd.conf: the collector would name folders unlike the events and the archive
    conf.write_text("partition-default: /x\nunixhierarchysep: no\n")
    with pytest.raises(CyrusSpoolError, match="needs 'unixhierarchysep: yes'"):
        CyrusSpool.from_imapd_conf(conf)
