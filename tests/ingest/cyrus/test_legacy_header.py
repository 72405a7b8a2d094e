"""spool.parse_legacy_header: the uniqueid of a Cyrus 2.x cyrus.header (lines, not a dlist)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.ingest.cyrus.spool import HEADER_MAGIC, SpoolFormatError, parse_legacy_header, parse_mailbox_header

QUOTE = b'"The best thing about this system was that it had lots of goals."\n\t--Jim Morris on Andrew\n'
LEGACY = HEADER_MAGIC + QUOTE + b"user.jane\tfngchpsey72ifuhlby002uup\n\njane\tlrswipkxtecdan\t\n"


def test_legacy_header_names_its_uniqueid_and_is_no_dlist():
    assert parse_legacy_header(LEGACY) == "fngchpsey72ifuhlby002uup"
    with pytest.raises(SpoolFormatError, match="no dlist"):
        parse_mailbox_header(LEGACY)


@pytest.mark.parametrize(
    "data",
    [
        b"user.jane\tfngchpsey72ifuhlby002uup\n",  # no magic
        HEADER_MAGIC + QUOTE,  # no quotaroot line
        HEADER_MAGIC + QUOTE + b"user.jane fngchpsey72ifuhlby002uup\n",  # no tab
        HEADER_MAGIC + QUOTE + b"user.jane\t../etc\n",  # not a mailbox id
    ],
)
def test_not_a_legacy_header(data):
    assert parse_legacy_header(data) is None


@given(st.binary(max_size=200))
def test_legacy_header_never_raises(tail):
    found = parse_legacy_header(HEADER_MAGIC + tail)
    assert found is None or found.isascii()
