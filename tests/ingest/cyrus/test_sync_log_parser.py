"""The one parser of Cyrus's sync log lines: what Cyrus 3.6.1 wrote, every kind, and anything
else refused with SyncLogError (never another exception); formatting and parsing round-trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.ingest.cyrus.sync_log import (
    ARITY,
    SyncLogError,
    SyncLogLine,
    folder_name,
    format_line,
    parse_line,
    targets,
)

# written by Cyrus 3.6.1 (the harness's server) for: a delivery to alice, bob creating
# "Pro jects", appending, flagging, renaming it to "Ren.amed", subscribing, deleting it
OBSERVED = (
    'MAILBOX user.alice\nAPPEND user.alice\nMAILBOX "user.bob.Pro jects"\nAPPEND "user.bob.Pro jects"\n'
    'RENAME "user.bob.Pro jects" user.bob.Ren^amed\nMAILBOX user.bob.Ren^amed\n'
    "SUB bob user.bob.Ren^amed\nRENAME user.bob.Ren^amed DELETED.user.bob.Ren^amed.6B0FB91A\n"
    "MAILBOX DELETED.user.bob.Ren^amed.6B0FB91A\n"
)


def test_what_cyrus_wrote_names_the_folders_once_in_order():
    found = targets(OBSERVED)
    assert found.mailboxes == ["user/alice", "user/bob/Pro jects", "user/bob/Ren.amed"]
    assert (found.users, found.lines, found.ignored, found.problems) == ([], 9, 1, [])


def test_every_kind():
    text = (
        "USER jane\nUNUSER old\nMETA jane\nQUOTA user.jane\nANNOTATION user.jane.Notes\n"
        "SEEN bob user.jane.Shared\nUNMAILBOX user.jane.Gone\nexample.org!user.kim\n"
        "APPEND example.org!user.kim.Sent\n"
    )
    found = targets(text)
    assert found.users == ["jane", "old"]
    assert found.mailboxes == [
        "user/jane/Notes",
        "user/jane/Shared",
        "user/jane/Gone",
        "user/kim@example.org/Sent",
    ]
    assert found.ignored == 2 and len(found.problems) == 1 and "line 8" in found.problems[0]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "APPEND",
        "APPEND a b",
        'APPEND "unterminated',
        'APPEND a"b',
        'APPEND "a"b',
        "NOPE x",
        'APPEND ""',
        'APPEND "bad \\escape"',
        "APPEND a\rb",
    ],
)
def test_malformed_lines_are_refused(line):
    with pytest.raises(SyncLogError):
        parse_line(line)


def test_folder_names():
    assert folder_name("user.bob.Ren^amed") == "user/bob/Ren.amed"
    assert folder_name("shared.Team") == "shared/Team"
    assert folder_name("example.org!user.kim") == "user/kim@example.org"


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused(text):
    try:
        entry = parse_line(text)
    except SyncLogError:
        return
    assert entry.kind in ARITY and len(entry.args) == ARITY[entry.kind]
    assert parse_line(format_line(entry)) == entry


names = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), min_size=1, max_size=40)


@given(st.sampled_from(sorted(ARITY)), st.data())
def test_format_then_parse_round_trips(kind, data):
    entry = SyncLogLine(kind, tuple(data.draw(names) for _ in range(ARITY[kind])))
    assert parse_line(format_line(entry)) == entry


@given(st.lists(st.one_of(names, st.sampled_from(OBSERVED.splitlines())), max_size=20))
def test_targets_never_raise_and_count_every_line(lines):
    text = "\n".join(lines)
    found = targets(text)
    assert found.lines == sum(1 for line in text.split("\n") if line)
