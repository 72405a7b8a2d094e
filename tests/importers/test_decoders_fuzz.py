"""Every format decoder fails only with its own clear error, and mboxrd round-trips exactly."""
from __future__ import annotations

import io
from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from vault.ingest.importers import open_source
from vault.ingest.importers.base import SourceError, SourceMessage
from vault.ingest.importers.cyrus import HEADER_MAGIC, parse_cyrus_header
from vault.ingest.importers.mbox import split_mbox
from vault.mailformat import maildir_flags, mbox_flags, parse_from_line
from vault.restore.targets import MboxTarget

lines = st.lists(st.sampled_from([b"From a@b Thu Aug 22 12:36:23 2002\n", b"From nobody\n", b">From x\n",
                                  b">>From y\n", b"Subject: s\n", b"\n", b"body\r\n", b"From \n"]) | st.binary(max_size=40),
                 max_size=30)


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


message_lines = st.lists(st.sampled_from(["From me\n", ">From you\n", ">>From x\n", "From", "text\n",
                                          "\n", "Subject: x\n", "From  \n"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(message_lines, min_size=1, max_size=5))
def test_mboxrd_round_trip(tmp_path_factory, messages):
    bodies = [("Subject: m\n\n" + "".join(m)).encode() for m in messages]
    bodies = [b if b.endswith(b"\n") else b + b"\n" for b in bodies]  # mbox keeps only LF-terminated messages exactly
    path = tmp_path_factory.mktemp("mbox") / "m.mbox"
    target = MboxTarget(path)
    for n, b in enumerate(bodies):
        target.add(b, flags=[], internal_date=datetime(2020, 1, 1, tzinfo=timezone.utc), uid=n)
    target.close()
    back = [m.read() for m in open_source(path).scan() if isinstance(m, SourceMessage)]
    assert back == bodies
