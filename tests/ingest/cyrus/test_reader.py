"""syntax.Reader, the one reader of Cyrus's IMAP/dlist grammar, fed in pieces.

Any value, written in any of the forms the grammar allows, read from a buffer that grows in
random steps gives what the whole buffer gives, and each Incomplete on the way asks for more
than it has but never for more than the value takes. Garbage is a SyntaxProblem or an
Incomplete, nothing else.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.ingest.cyrus import syntax
from vault.ingest.cyrus.syntax import LENIENT, NIL, STRICT, Incomplete, Reader, SyntaxProblem

_ATOM = re.compile(syntax.STRICT_ATOM_CHAR + b"+")

raw_values = st.recursive(
    st.just(NIL) | st.binary(max_size=30) | st.sampled_from([b"NIL", b"x", b"a\\b", b'"', b"{1}", b")"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.binary(max_size=8) | st.sampled_from([b"MESSAGE", b"k"]), inner, max_size=3)
    ),
    max_leaves=15,
)


def _forms(raw: bytes) -> list[bytes]:
    """Every way the grammar can spell the string ``raw``."""
    forms = [b"{%d}\r\n" % len(raw) + raw, b"{%d+}\r\n" % len(raw) + raw]
    if not any(c in raw for c in b"\r\n\0"):
        forms.append(b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
    if _ATOM.fullmatch(raw) and raw != b"NIL":
        forms.append(raw)
    return forms


def _encode(value, pick, space) -> bytes:
    if value is NIL:
        return b"NIL"
    if isinstance(value, bytes):
        forms = _forms(value)
        return forms[pick() % len(forms)]
    if isinstance(value, dict):
        items = [x for k, v in value.items() for x in (k, v)]
        return b"%(" + space().join(_encode(v, pick, space) for v in items) + b")"
    return b"(" + space().join(_encode(v, pick, space) for v in value) + b")"


def _read_in_pieces(data: bytes, cuts: list[int], dialect) -> tuple[object, int]:
    """What a stream reader does: append a piece, read from the start once the buffer has
    what the last Incomplete asked for."""
    buf, need, last = b"", 1, 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        buf += data[last:cut]
        last = cut
        if len(buf) < need:
            continue
        reader = Reader(buf, dialect=dialect)
        try:
            value = reader.value()
        except Incomplete as e:
            assert len(buf) < e.need <= len(data), (len(buf), e.need, e.what)
            need = e.need
            continue
        return value, reader.pos
    raise AssertionError(f"the whole of {data!r} is still incomplete (need {need})")


spellings = st.tuples(raw_values, st.lists(st.integers(0, 3), min_size=1, max_size=40))
separators = st.lists(st.sampled_from([b" ", b"\t", b"  ", b"\r\n", b"\n", b" \t\r\n"]), min_size=1)


def _spell(value, choices, spaces=(b" ",)) -> bytes:
    picks, seps = iter(choices * 1000), iter(spaces * 1000)
    return _encode(value, lambda: next(picks), lambda: next(seps))


@settings(max_examples=300)
@given(spellings, st.lists(st.integers(0, 10_000), max_size=8))
def test_strict_reads_in_pieces_as_whole(spelled, cuts):
    value, choices = spelled
    text = _spell(value, choices)
    data = text + b"\r\n"  # a value runs to the next byte; the frame's CRLF ends it
    whole = Reader(data)
    assert whole.value() == value and whole.pos == len(text)
    assert _read_in_pieces(data, cuts, STRICT) == (value, len(text))
    assert syntax.parse(text) == [syntax.decode(value)]


@settings(max_examples=300)
@given(spellings, separators, st.lists(st.integers(0, 10_000), max_size=8))
def test_lenient_reads_in_pieces_as_whole(spelled, spaces, cuts):
    value, choices = spelled
    text = _spell(value, choices, spaces)
    data = text + b" "
    whole = Reader(data, dialect=LENIENT)
    assert whole.value() == value and whole.pos == len(text)
    assert _read_in_pieces(data, cuts, LENIENT) == (value, len(text))
    assert syntax.parse(b"\t" + text + b"\r\n") == [syntax.decode(value)]


@settings(max_examples=500)
@given(st.binary(max_size=200), st.sampled_from([STRICT, LENIENT]), st.booleans())
def test_garbage_is_a_syntax_problem_or_incomplete(data, dialect, final):
    reader = Reader(data, dialect=dialect, final=final)
    try:
        reader.value()
    except SyntaxProblem as e:
        assert "offset" in str(e)
    except Incomplete as e:  # also with final data: only an atom may end with the buffer
        assert e.need > len(data) and e.what


def test_raw_values_and_nil():
    assert Reader(b'%(Key "v" n NIL l (a {2+}\r\nxy))\r\n').value() == {
        b"Key": b"v",
        b"n": NIL,
        b"l": [b"a", b"xy"],
    }
    assert not NIL and repr(NIL) == "NIL" and Reader(b'"NIL" ').value() == b"NIL"
    assert Reader(b"%(method x)", dialect=syntax.Dialect(upper_keys=True)).value() == {b"METHOD": b"x"}


@pytest.mark.parametrize(
    "data, words",
    [
        (b"(a  b)", "expected a value"),
        (b'(a"b")', "a space"),
        (b"( a)", "expected a value"),
        (b"{3}\nabc", "CRLF"),
        (b"{99999999999}\r\n", "too many digits"),
        (b"%{f 1 2}", "file values"),
        (b'"a\0b"', "NUL"),
    ],
)
def test_strict_refuses_what_lenient_takes_or_nothing_takes(data, words):
    with pytest.raises(SyntaxProblem, match=words):
        Reader(data + b"\r\n").value()


def test_lenient_takes_tabs_line_breaks_and_bare_lf_literals():
    assert syntax.parse(b"(\ta\t\tb\r\n(c)\n{3}\nxyz )\t%( k\tv )") == [["a", "b", ["c"], "xyz"], {"k": "v"}]


def test_incomplete_says_what_and_how_much():
    with pytest.raises(Incomplete) as e:
        Reader(b"(a {10+}\r\nabc").value()
    assert (e.value.need, e.value.what) == (20, "a literal")
    with pytest.raises(SyntaxProblem, match="inside a literal at offset 13"):
        syntax.parse(b"(a {10+}\r\nabc")


def test_limits():
    deep = syntax.Dialect(max_depth=2)
    assert Reader(b"((()))\r\n", dialect=deep).value() == [[[]]]
    with pytest.raises(SyntaxProblem, match="nested deeper than 2"):
        Reader(b"(((())))\r\n", dialect=deep).value()
    with pytest.raises(SyntaxProblem, match="exceeds 5"):
        Reader(b"{6+}\r\n", dialect=syntax.Dialect(max_literal=5)).value()
