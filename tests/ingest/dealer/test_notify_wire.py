"""The two wire decoders against Cyrus's real bytes, split reads, truncation and garbage."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.dealer.helpers import datagram, dlist_frames, event_lines
from vault.ingest.cyrus.notify import (
    DlistFrameParser,
    Notification,
    WireError,
    _fast_frame,
    _parse_frame,
    decode_datagram,
    decode_dlist_frame,
    encode_datagram,
    encode_dlist_notify,
)

FRAMES = dlist_frames()


def test_samples_are_there():
    assert len(FRAMES) >= 5 and len(event_lines()) == 39


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f[:60].decode().split('"event":"')[-1])
def test_real_dlist_frames_decode(frame):
    n = decode_dlist_frame(frame)
    assert (n.method, n.cls, n.priority, n.user, n.mailbox, n.options, n.filepath) == (
        "external",
        "EVENT",
        "",
        "",
        "",
        (),
        "",
    )
    start = frame.index(b"}\r\n") + 3
    assert n.message == frame[start : start + len(n.message)]
    assert frame[start + len(n.message) :] == b" FILEPATH NIL)\r\n"
    assert json.loads(n.message)["event"]


@pytest.mark.parametrize("frame", FRAMES[:3])
def test_encoder_reproduces_cyrus_bytes(frame):
    assert encode_dlist_notify(decode_dlist_frame(frame)) == frame


def test_every_split_point_of_a_frame():
    frame = FRAMES[1]
    whole = decode_dlist_frame(frame)
    for cut in range(1, len(frame)):
        parser = DlistFrameParser()
        assert parser.feed(frame[:cut]) == []
        assert parser.feed(frame[cut:]) == [whole], cut
        assert parser.error is None and parser.pending == b""
        parser.close()


def test_byte_by_byte_and_back_to_back_frames():
    parser = DlistFrameParser()
    stream = b"".join(FRAMES)
    got = []
    for i in range(len(stream)):
        got += parser.feed(stream[i : i + 1])
    assert [n.message for n in got] == [decode_dlist_frame(f).message for f in FRAMES]


def test_large_literal_in_many_reads():
    midset = [f"<bulk-{i}-{'m' * 60}@example.org>" for i in range(1520)]
    message = json.dumps({"event": "MessageTrash", "vnd.cmu.midset": midset}).encode()
    assert len(message) > 128 * 1024
    frame = encode_dlist_notify(Notification(message=message, method="external", cls="EVENT"))
    parser = DlistFrameParser()
    got = []
    for i in range(0, len(frame), 1000):
        got += parser.feed(frame[i : i + 1000])
    assert [n.message for n in got] == [message]


def test_frame_larger_than_the_limit_is_an_error():
    parser = DlistFrameParser(max_frame=1000)
    parser.feed(b"NOTIFY %(METHOD external MESSAGE {5000+}\r\n" + b"x" * 100)
    assert "larger than 1000" in str(parser.error)


@pytest.mark.parametrize(
    "bad, words",
    [
        (b"HELLO %(MESSAGE {2+}\r\n{})\r\n", "NOTIFY expected"),
        (b"NOTIFY %(METHOD external)\r\n", "no MESSAGE"),
        (b"NOTIFY (MESSAGE {2+}\r\n{})\r\n", "kvlist"),
        (b"NOTIFY %(MESSAGE {2+}\r\n{}) junk\r\n", "CRLF"),
        (b"NOTIFY %(MESSAGE {x+}\r\n{})\r\n", "no length"),
        (b"NOTIFY %(MESSAGE)\r\n", "without a value"),
        (b"NOTIFY %(MESSAGE (a b))\r\n", "MESSAGE is a list"),
        (b"NOTIFY %{default 1 2}\r\n", "file values"),
        (b"NOTIFY %(OPTIONS " + b"(" * 40 + b")\r\n", "nested"),
    ],
)
def test_malformed_frames_name_the_problem(bad, words):
    with pytest.raises(WireError, match=words):
        decode_dlist_frame(bad)


def test_after_an_error_the_parser_refuses_more_and_keeps_the_bytes():
    parser = DlistFrameParser()
    assert parser.feed(FRAMES[0] + b"GARBAGE here\r\n") != []
    assert parser.error is not None and parser.pending == b"GARBAGE here\r\n"
    with pytest.raises(WireError):
        parser.feed(FRAMES[0])


def test_connection_closed_mid_frame():
    parser = DlistFrameParser()
    parser.feed(FRAMES[0][:300])
    with pytest.raises(WireError, match="middle of a frame"):
        parser.close()


def test_quoted_strings_and_synchronising_literals():
    frame = (
        b'NOTIFY %(METHOD "ext \\"q\\"" CLASS EVENT USER {5}\r\nalice OPTIONS (a "b c") '
        b'MESSAGE "{}" FILEPATH NIL)\r\n'
    )
    n = decode_dlist_frame(frame)
    assert (n.method, n.user, n.options, n.message) == ('ext "q"', "alice", ("a", "b c"), b"{}")


# ---------------------------------------------------------------------------- datagrams
@pytest.mark.parametrize("line", event_lines()[:8])
def test_readme_datagrams_decode(line):
    n = decode_datagram(datagram(line))
    assert (n.method, n.cls, n.message, n.options) == ("external", "EVENT", line, ())


def test_datagram_with_options():
    raw = b"m\0c\0p\0u\0box\0" + b"2\0o1\0o2\0" + b'{"a":1}\0'
    n = decode_datagram(raw)
    assert (n.method, n.cls, n.priority, n.user, n.mailbox, n.options, n.message) == (
        "m",
        "c",
        "p",
        "u",
        "box",
        ("o1", "o2"),
        b'{"a":1}',
    )


def test_every_truncation_of_a_datagram_is_an_error():
    whole = datagram(event_lines()[10])
    for cut in range(len(whole)):
        with pytest.raises(WireError):
            decode_datagram(whole[:cut])
    # the case Cyrus produces: JSON cut at ~21 KB, no final NUL
    with pytest.raises(WireError, match="truncated"):
        decode_datagram(whole[:-5])


@pytest.mark.parametrize(
    "bad, words",
    [
        (b"", "empty"),
        (b"a\0b\0\0", "at least 7"),
        (b"a\0b\0c\0d\0e\0x\0{}\0", "not a number"),
        (b"a\0b\0c\0d\0e\x002\0{}\0", "count says 2"),
        (b"a\0b\0c\0d\0e\x00999999\0{}\0", "options"),
    ],
)
def test_malformed_datagrams_name_the_problem(bad, words):
    with pytest.raises(WireError, match=words):
        decode_datagram(bad)


# ---------------------------------------------------------------------------- properties
text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=20)
notifications = st.builds(
    Notification,
    message=st.binary(max_size=300),
    method=text,
    cls=text,
    priority=text,
    user=text,
    mailbox=text,
    options=st.lists(text, max_size=4).map(tuple),
    filepath=text,
)


@given(notifications, st.lists(st.integers(0, 400), max_size=6))
def test_dlist_round_trip_with_any_chunking(n, cuts):
    frame = encode_dlist_notify(n)
    parser = DlistFrameParser()
    got, last = [], 0
    for cut in sorted(c % (len(frame) + 1) for c in cuts) + [len(frame)]:
        got += parser.feed(frame[last:cut])
        last = cut
    parser.close()
    assert got == [n]


@given(notifications.filter(lambda n: b"\0" not in n.message))
def test_datagram_round_trip(n):
    n = dataclasses.replace(n, filepath="")  # datagrams have no FILEPATH
    assert decode_datagram(encode_datagram(n)) == n


@given(st.binary(max_size=400))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_dlist_garbage_is_a_clear_error_or_a_frame(data):
    parser = DlistFrameParser()
    frames = parser.feed(data)
    assert all(isinstance(f, Notification) for f in frames)
    if parser.error is not None:
        assert isinstance(parser.error, WireError) and str(parser.error)
    try:
        parser.close()
    except WireError as e:
        assert str(e)


@given(st.sampled_from(FRAMES), st.integers(0, 10_000), st.binary(min_size=1, max_size=8), st.booleans())
def test_mutated_real_frames_never_raise_anything_else(frame, at, junk, replace):
    at %= len(frame)
    data = frame[:at] + junk + frame[at + (len(junk) if replace else 0) :]
    try:
        decode_dlist_frame(data)
    except WireError as e:
        assert str(e)


@given(st.binary(max_size=300))
def test_datagram_garbage_is_a_clear_error_or_a_notification(data):
    try:
        assert isinstance(decode_datagram(data), Notification)
    except WireError as e:
        assert str(e)


@given(st.sampled_from(event_lines()), st.integers(0, 2000), st.binary(min_size=1, max_size=4))
def test_mutated_datagrams_never_raise_anything_else(line, at, junk):
    whole = datagram(line)
    at %= len(whole)
    try:
        decode_datagram(whole[:at] + junk + whole[at + 1 :])
    except WireError as e:
        assert str(e)


@given(
    st.one_of(
        notifications.map(encode_dlist_notify),
        st.tuples(st.sampled_from(FRAMES), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)).map(
            lambda t: t[0][: t[1] % len(t[0])] + t[2] + t[0][t[1] % len(t[0]) + len(t[2]) :]
        ),
    )
)
def test_the_fast_path_for_cyrus_frames_agrees_with_the_general_parser(frame):
    fast = _fast_frame(frame)
    if fast is None:
        return
    assert fast == _parse_frame(frame)


def test_real_frames_take_the_fast_path():
    assert all(_fast_frame(f) == _parse_frame(f) for f in FRAMES)
