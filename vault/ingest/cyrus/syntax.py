"""IMAP/dlist data syntax: the one reader of the grammar Cyrus writes its own data in.

Cyrus's dlist is IMAP syntax plus ``%(key value ...)`` kvlists: atoms, ``"quoted"`` strings,
``{N}``/``{N+}`` literals followed by CRLF and N bytes, ``NIL``, ``( ... )`` lists and
``%( ... )`` kvlists. The vault meets it in GETACL/GETMETADATA answers and cyrus.header (the
collector, through :func:`parse`) and in notifyd's dlist NOTIFY frames (notify.py, through
:class:`Reader`).

:class:`Reader` is the core. It reads a buffer that may end anywhere: where it does, it raises
:class:`Incomplete` with the buffer length worth retrying at, so a stream can be read in pieces
without re-scanning a literal's body while it is still arriving. Values come back raw: strings
as ``bytes``, ``NIL`` as :data:`NIL`, lists as ``list``, kvlists as ``dict``. A
:class:`Dialect` says how strict to be: the default is the wire as Cyrus writes it (one space
between values, CRLF after a literal's length); ``lenient`` also takes any whitespace, tabs
and line breaks included, between values and a bare LF after a literal's length.

:func:`parse` is the decoded convenience on top, for complete data: strings as ``str`` (UTF-8,
undecodable bytes replaced), ``NIL`` as ``None``, leniently read. Malformed data is a
:class:`SyntaxProblem` naming the offset, never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

MAX_NESTING = 32
MAX_LITERAL_DIGITS = 10

# Bytes that may be in an atom of the strict dialect (a regex class, shared with notify.py's
# fast path so that it cannot drift from this reader). Atoms never hold SP ( ) % { " or CR LF.
STRICT_ATOM_CHAR = rb'[^ ()%{}"\x00-\x20\x7f]'
_STRICT_ATOM = re.compile(STRICT_ATOM_CHAR + b"*")
_LENIENT_ATOM = re.compile(rb'[^ \t()%{"\r\n]*')  # also takes '}' and control bytes
_STRICT_QUOTED = re.compile(rb'(?:[^"\\\r\n\x00]+|\\.)*', re.DOTALL)
_LENIENT_QUOTED = re.compile(rb'(?:[^"\\\r\n]+|\\.)*', re.DOTALL)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_DIGITS = re.compile(rb"[0-9]*")
_SPACE = re.compile(rb"[ \t\r\n]*")


class SyntaxProblem(ValueError):
    """The bytes are not IMAP/dlist data; the message says what is wrong and at which offset."""


class Incomplete(Exception):
    """The buffer ends inside a value: ``need`` is the buffer length below which reading again
    is pointless, ``what`` names the unfinished value."""

    def __init__(self, need: int, what: str):
        super().__init__(need, what)
        self.need = need
        self.what = what


class _Nil:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NIL"

    def __bool__(self) -> bool:
        return False


NIL = _Nil()  # the NIL atom (a quoted "NIL" is the string b"NIL")


@dataclass(frozen=True)
class Dialect:
    """How strictly to read, and within which limits."""

    lenient: bool = False  # any whitespace between values; a bare LF after a literal's length
    max_depth: int = MAX_NESTING  # lists and kvlists nested deeper are an error
    max_literal: int | None = None  # a literal announcing more bytes is an error
    upper_keys: bool = False  # kvlist keys uppercased (dlist keys are case-insensitive)


STRICT = Dialect()
LENIENT = Dialect(lenient=True)


class Reader:
    """Recursive descent over ``buf`` from ``pos``; ``pos`` is left after what was read.

    ``final`` says the buffer is all there is: an atom may then end with it. Otherwise the end
    of the buffer raises :class:`Incomplete`, whatever was read so far is dropped and the
    caller reads again, from the start, once the buffer has grown to ``need`` bytes.
    """

    __slots__ = (
        "buf",
        "pos",
        "final",
        "_lenient",
        "_max_depth",
        "_max_literal",
        "_upper",
        "_atom",
        "_quoted",
    )

    def __init__(self, buf: bytes, pos: int = 0, dialect: Dialect = STRICT, final: bool = False):
        self.buf = buf
        self.pos = pos
        self.final = final
        self._lenient = dialect.lenient
        self._max_depth = dialect.max_depth
        self._max_literal = dialect.max_literal
        self._upper = dialect.upper_keys
        self._atom = _LENIENT_ATOM if dialect.lenient else _STRICT_ATOM
        self._quoted = _LENIENT_QUOTED if dialect.lenient else _STRICT_QUOTED

    def fail(self, what: str, at: int | None = None) -> NoReturn:
        raise SyntaxProblem(f"{what} at offset {self.pos if at is None else at}")

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def skip_space(self) -> None:
        """Spaces, tabs and line breaks (only ever between values, and only where the caller
        allows them)."""
        self.pos = _SPACE.match(self.buf, self.pos).end()

    def expect(self, token: bytes, what: str) -> None:
        end = self.pos + len(token)
        have = self.buf[self.pos : end]
        if have != token:
            if not token.startswith(have):
                self.fail(f"expected {what}, got {have!r}")
            raise Incomplete(end, what)
        self.pos = end

    def atom(self) -> bytes:
        start = self.pos
        end = self._atom.match(self.buf, start).end()
        if end >= len(self.buf) and not self.final:
            raise Incomplete(end + 1, "an atom")
        if end == start:
            self.fail(f"expected a value, got {self.buf[start : start + 1]!r}")
        self.pos = end
        return self.buf[start:end]

    def value(self, depth: int = 0):
        """One value: bytes, NIL, a list or a kvlist (a dict)."""
        if depth > self._max_depth:
            self.fail(f"lists nested deeper than {self._max_depth}")
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            raise Incomplete(pos + 1, "a value")
        c = buf[pos]
        if c == 0x28:  # (
            self.pos = pos + 1
            return self.sequence(depth, "a list")
        if c == 0x25:  # %
            self.expect(b"%(", "'%(' (only kvlists are valid here; '%{' file values are not)")
            return self.kvlist(depth)
        if c == 0x22:  # "
            return self.quoted()
        if c == 0x7B:  # {
            return self.literal()
        word = self.atom()
        return NIL if word == b"NIL" else word

    def sequence(self, depth: int, what: str) -> list:
        """The values up to the closing ')', which is consumed."""
        buf, lenient = self.buf, self._lenient
        items = []
        while True:
            if lenient:
                self.pos = _SPACE.match(buf, self.pos).end()
            pos = self.pos
            if pos >= len(buf):
                raise Incomplete(pos + 1, what)
            if buf[pos] == 0x29:  # )
                self.pos = pos + 1
                return items
            if items and not lenient:
                if buf[pos] != 0x20:
                    self.fail(f"expected a space or ')', got {buf[pos : pos + 1]!r}")
                self.pos = pos + 1
            items.append(self.value(depth + 1))

    def kvlist(self, depth: int) -> dict:
        items = self.sequence(depth, "a kvlist")
        if len(items) % 2:
            self.fail("kvlist has a key without a value")
        kv = {}
        for key, val in zip(items[0::2], items[1::2]):
            if key.__class__ is not bytes:
                self.fail("kvlist key is not an atom or string")
            kv[key.upper() if self._upper else key] = val
        return kv

    def quoted(self) -> bytes:
        buf = self.buf
        start = self.pos + 1
        end = self._quoted.match(buf, start).end()
        if end >= len(buf) or buf[end] == 0x5C:  # the end, or a backslash at the end
            raise Incomplete(end + 1 + (end < len(buf)), "a quoted string")
        if buf[end] != 0x22:
            self.fail(
                "NUL inside a quoted string" if buf[end] == 0 else "line break inside a quoted string", end
            )
        self.pos = end + 1
        body = buf[start:end]
        return _UNESCAPE.sub(rb"\1", body) if b"\\" in body else body

    def literal(self) -> bytes:
        buf, start = self.buf, self.pos
        end = _DIGITS.match(buf, start + 1).end()
        digits = end - start - 1
        if digits > MAX_LITERAL_DIGITS:
            self.fail("literal length has too many digits", start)
        if end >= len(buf):
            raise Incomplete(end + 1, "a literal's length")
        if not digits:
            self.fail("literal has no length", start)
        size = int(buf[start + 1 : end])
        if self._max_literal is not None and size > self._max_literal:
            self.fail(f"literal of {size} bytes exceeds {self._max_literal}", start)
        self.pos = end + 1 if buf[end] == 0x2B else end  # "+": non-synchronising
        if not self._lenient:
            self.expect(b"}\r\n", "'}' and CRLF after a literal length")
        else:
            self.expect(b"}", "'}' after a literal length")
            if buf.startswith(b"\n", self.pos):
                self.pos += 1
            else:
                self.expect(b"\r\n", "a line break after a literal length")
        body = self.pos
        self.pos = body + size
        if self.pos > len(buf):
            raise Incomplete(self.pos, "a literal")
        return buf[body : self.pos]


def decode(value):
    """A raw value as :func:`parse` gives it: str (UTF-8, undecodable bytes replaced) for bytes,
    None for NIL, lists and kvlists decoded all the way down."""
    if value.__class__ is bytes:
        return value.decode("utf-8", "replace")
    if value is NIL:
        return None
    if isinstance(value, list):
        return [decode(v) for v in value]
    return {k.decode("utf-8", "replace"): decode(v) for k, v in value.items()}


def parse(data: bytes) -> list:
    """Every value in ``data``, in order, decoded; whitespace between values is skipped."""
    if not isinstance(data, (bytes, bytearray)):
        raise SyntaxProblem(f"expected bytes, got {type(data).__name__}")
    reader = Reader(bytes(data), dialect=LENIENT, final=True)
    values = []
    try:
        while True:
            reader.skip_space()
            if reader.at_end():
                return values
            values.append(decode(reader.value()))
    except Incomplete as e:
        raise SyntaxProblem(f"data ends inside {e.what} at offset {len(data)}") from None


def join_response(parts) -> bytes:
    """imaplib's untagged data for one response, reassembled: a response carrying literals
    arrives as ``(b'prefix {N}', literal)`` tuples followed by the rest of the line."""
    out = bytearray()
    for part in parts:
        if isinstance(part, tuple):
            head, body = part[0], part[1]
            out += head + b"\r\n" + body
        elif isinstance(part, (bytes, bytearray)):
            out += part
    return bytes(out)
