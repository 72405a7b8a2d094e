"""Parsing Cyrus events: IMAP URLs, UID sets, ACL strings, on Cyrus's own samples and fuzzed."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.data import data_file
from vault.ingest.worker.handlers.event import (
    Event,
    EventError,
    ImapUrl,
    expand_uidset,
    parse_acl,
    parse_uidset,
    parse_url,
    uids,
)

SAMPLES = data_file("cyrus/cyrus-events.jsonl")


def samples() -> list[dict]:
    return [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]


def test_every_sample_uri_parses():
    for event in samples():
        url = Event(event).url
        assert url.host == "feas.local"
        if "mailboxID" in event:  # every mailbox event names its folder
            assert url.mailbox and url.mailbox.startswith("user/")


def test_uri_shapes_from_the_samples():
    assert parse_url("imap://feas.local") == ImapUrl("feas.local")
    assert parse_url("imap://feas.local/user/alice") == ImapUrl("feas.local", "user/alice")
    assert parse_url("imap://feas.local/user/alice;UIDVALIDITY=1795352107/;UID=1") == ImapUrl(
        "feas.local", "user/alice", 1795352107, 1
    )
    assert parse_url("imap://feas.local/user/alice/Archive;UIDVALIDITY=1795352110") == ImapUrl(
        "feas.local", "user/alice/Archive", 1795352110
    )
    # RFC 5092 percent-encoding of names with spaces and non-ASCII
    assert (
        parse_url("imap://h/user/alice/My%20Stuff%20%C3%A9;UIDVALIDITY=5").mailbox == "user/alice/My Stuff é"
    )


def test_old_mailbox_id_is_a_uri():
    move = next(e for e in samples() if e["event"] == "vnd.cmu.MessageMove")
    ev = Event(move)
    assert ev.old_url == ImapUrl("feas.local", "user/alice", 1795352107)
    assert uids(ev.get("vnd.cmu.oldUidset")) == [2] and uids(ev.get("uidset")) == [2]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        42,
        "",
        "http://x/y",
        "imap://h/;UIDVALIDITY=3",
        "imap://h/user/a;UIDVALIDITY=x",
        "imap://h/user/a;UIDVALIDITY=0",
        "imap://h/user/a;UIDVALIDITY=1/;UID=99999999999",
        "imap://h/user/%ff%fe",
    ],
)
def test_bad_uris(bad):
    with pytest.raises(EventError):
        parse_url(bad)


def test_uidsets():
    assert parse_uidset("1:3,7") == [(1, 3), (7, 7)]
    assert uids("1:3,7") == [1, 2, 3, 7]
    assert uids("5:3,4,9") == [3, 4, 5, 9]  # reversed range, repeats once
    for bad in ("", "*", "1:*", "0", "1,,2", "a", "1:2:3", "4294967296", None, 7):
        with pytest.raises(EventError):
            uids(bad)
    with pytest.raises(EventError, match="larger"):
        expand_uidset(parse_uidset("1:4294967295"))


def test_acl_strings():
    assert parse_acl("alice\tlrswipkxtecdan\tbob\tlrs\t") == {"alice": "lrswipkxtecdan", "bob": "lrs"}
    assert parse_acl("") == {} and parse_acl(None) == {}
    with pytest.raises(EventError):
        parse_acl("alice\tlrs\tbob\t")


def test_event_fields():
    with pytest.raises(EventError):
        Event({"no": "name"})
    with pytest.raises(EventError):  # JSON off the wire that is not an object
        Event(json.loads('["not", "a", "dict"]'))
    ev = Event({"event": "MessageNew", "timestamp": "2026-11-22T12:55:11.910Z", "user": ""})
    assert ev.time == "2026-11-22T12:55:11.910000Z" and ev.user is None
    with pytest.raises(EventError, match="mailboxID"):
        _ = ev.mailbox_id
    with pytest.raises(EventError, match="timestamp"):
        _ = Event({"event": "X", "timestamp": "yesterday"}).time


# ---------------------------------------------------------------- fuzz

_ranges = st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 5000)), min_size=1, max_size=8)


@given(_ranges)
def test_uidset_round_trip(ranges):
    text = ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)
    expected, seen = [], set()
    for a, b in ranges:
        for uid in range(min(a, b), max(a, b) + 1):
            if uid not in seen:
                seen.add(uid)
                expected.append(uid)
    assert uids(text) == expected


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_uidset_fuzz_only_raises_event_error(text):
    try:
        result = uids(text)
    except EventError:
        return
    assert all(0 < u <= 0xFFFFFFFF for u in result)


_names = st.lists(st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s), min_size=1, max_size=4)


@given(_names, st.integers(1, 0xFFFFFFFF), st.none() | st.integers(1, 0xFFFFFFFF))
def test_url_round_trip(parts, uidvalidity, uid):
    name = "/".join(parts)
    url = f"imap://host.example/{quote(name, safe='/')};UIDVALIDITY={uidvalidity}"
    if uid is not None:
        url += f"/;UID={uid}"
    assert parse_url(url) == ImapUrl("host.example", name, uidvalidity, uid)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_url_fuzz_only_raises_event_error(text):
    for candidate in (text, "imap://" + text):
        try:
            parse_url(candidate)
        except EventError:
            pass
