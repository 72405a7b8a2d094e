"""IMAP/dlist data syntax: what GETACL and GETMETADATA answer and what cyrus.header holds.

One decoder for both, since Cyrus's dlist is IMAP syntax plus ``%(key value ...)`` maps:
atoms, ``"quoted"`` strings, ``{N}``/``{N+}`` literals followed by CRLF and N bytes,
``NIL``, ``( ... )`` lists and ``%( ... )`` maps. Atoms and strings come back as ``str``
(UTF-8, undecodable bytes replaced), ``NIL`` as ``None``, lists as ``list``, maps as ``dict``.
Anything else is a :class:`SyntaxProblem` naming the offset, never another exception.
"""

from __future__ import annotations

from typing import NoReturn

MAX_NESTING = 32
_ATOM_END = b' ()%{"\r\n'


class SyntaxProblem(ValueError):
    pass


def parse(data: bytes) -> list:
    """Every value in ``data``, in order, as a list (whitespace between values is skipped)."""
    parser = _Parser(data)
    values: list = []
    while True:
        parser.skip_space()
        if parser.pos >= len(data):
            return values
        values.append(parser.value(0))


class _Parser:
    def __init__(self, data: bytes):
        if not isinstance(data, (bytes, bytearray)):
            raise SyntaxProblem(f"expected bytes, got {type(data).__name__}")
        self.data = bytes(data)
        self.pos = 0

    def fail(self, what: str) -> NoReturn:
        raise SyntaxProblem(f"{what} at offset {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in b" \t\r\n":
            self.pos += 1

    def value(self, depth: int):
        if depth > MAX_NESTING:
            self.fail("nested too deeply")
        data, pos = self.data, self.pos
        if pos >= len(data):
            self.fail("value expected, end of data")
        c = data[pos : pos + 1]
        if c == b"(":
            self.pos += 1
            return self.sequence(depth)
        if data.startswith(b"%(", pos):
            self.pos += 2
            items = self.sequence(depth)
            if len(items) % 2:
                self.fail("map with a key but no value")
            return {_key(k, self): v for k, v in zip(items[::2], items[1::2])}
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()
        if c in b")":
            self.fail("unexpected ')'")
        end = pos
        while end < len(data) and data[end] not in _ATOM_END:
            end += 1
        if end == pos:
            self.fail(f"unexpected {c!r}")
        self.pos = end
        atom = data[pos:end].decode("utf-8", "replace")
        return None if atom == "NIL" else atom

    def sequence(self, depth: int) -> list:
        out: list = []
        while True:
            self.skip_space()
            if self.pos >= len(self.data):
                self.fail("')' expected, end of data")
            if self.data[self.pos : self.pos + 1] == b")":
                self.pos += 1
                return out
            out.append(self.value(depth + 1))

    def quoted(self) -> str:
        data = self.data
        out = bytearray()
        i = self.pos + 1
        while i < len(data):
            c = data[i]
            if c == 0x22:  # closing quote
                self.pos = i + 1
                return out.decode("utf-8", "replace")
            if c == 0x5C:  # backslash quotes the next byte
                i += 1
                if i >= len(data):
                    break
                c = data[i]
            elif c in b"\r\n":
                self.fail("line break inside a quoted string")
            out.append(c)
            i += 1
        self.fail("unterminated quoted string")

    def literal(self) -> str:
        data = self.data
        close = data.find(b"}", self.pos)
        if close < 0:
            self.fail("unterminated literal length")
        size_text = data[self.pos + 1 : close].rstrip(b"+")
        if not size_text.isdigit() or len(size_text) > 12:
            self.fail("bad literal length")
        size = int(size_text)
        start = close + 1
        if data.startswith(b"\r\n", start):
            start += 2
        elif data.startswith(b"\n", start):
            start += 1
        else:
            self.fail("literal length not followed by a line break")
        if start + size > len(data):
            self.fail(f"literal of {size} bytes cut short")
        self.pos = start + size
        return data[start : start + size].decode("utf-8", "replace")


def _key(value, parser: _Parser) -> str:
    if not isinstance(value, str):
        parser.fail("map key is not an atom or string")
    return value


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
