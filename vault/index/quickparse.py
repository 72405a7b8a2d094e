"""A message read as ``email.message_from_bytes`` reads it, for what the index reads, without
the stdlib parser's line-by-line walk (its cost in an import: the feed parser reads every line
of every part, attachments too, through a few Python calls each, and compiles a regular
expression for every multipart boundary).

What it reads: the header fields the index looks at (``READ``), kept as the compat32 policy
stores them; a single part's body; a multipart's parts, split at its boundary lines as the
feed parser splits them (an outer boundary ends an inner part; after a delimiter line, any
boundary lines that follow it at once are skipped; the line end before a delimiter belongs to
it), each part read the same way. The messages it makes answer ``get``/``get_all`` from a
dict (the stdlib's scan every field, lowering each name, on every look-up); everything else
about them is the stdlib's ``Message``.

It reads only the shapes it reads exactly as the full parse does; ``read`` answers None for
any other (then parse in full): a header block with a line that is not a field (no colon, a
"From " line after the first, a continuation first, a bare CR), a message/* part or one that
defaults to it (multipart/digest), a multipart with no boundary, a boundary with a line break
in it, a multipart transfer encoding other than 7bit/8bit/binary, a close delimiter before any
other or none at all: all the defects of a message's structure the full parse notes but one, a
missing close delimiter (the last part runs to the end of its multipart), read here as there.
tests/index/test_text.py compares what extract reads from both.
"""

from __future__ import annotations

import re
from email import errors
from email.message import Message
from email.policy import Compat32

# the fields the index reads (of a part or of the message): the only ones kept
READ = frozenset(
    (
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "date",
        "content-type",
        "content-disposition",
        "content-transfer-encoding",
    )
)
# A field (a name of the characters email.feedparser.headerRE allows, a colon, then its value
# with the lines folded into it); _WANTED: one of READ's (ASCII case-insensitive).
# _ODD_LINE: a line that is neither a field nor a continuation. Both look for a line's start as
# the "\n" before it (the header block is searched with one put in front): "^" with re.M is
# tried at every character, a literal at the few places the engine's scan for it stops.
# A look at a line's first letter skips most lines (Received, X-...) before the names are tried.
_WANTED = re.compile(
    r"\n(?=[" + "".join(sorted({n[0] for n in READ} | {n[0].upper() for n in READ})) + r"])"
    r"(" + "|".join(re.escape(n) for n in sorted(READ)) + r"):([^\n]*+(?:\n[ \t][^\n]*+)*+)",
    re.I | re.A,
)
_ODD_LINE = re.compile(r"\n(?![\041-\071\073-\176]++:|[ \t])")
_LINE_END = re.compile(r"\r\n|\r|\n")
_EMPTY_LINE = re.compile(r"\n\r?\n")


class Part(Message):
    """A ``Message`` whose fields are looked up by name in a dict, each value fetched through
    the policy once, as it is read (the stdlib fetches it on every look-up). Its fields do
    not change once read: its content type and parameters are answered from caches shared by
    all Parts, keyed by the field's value (the stdlib parses them on every call; most parts
    carry one of a few dozen Content-Types)."""

    def __init__(self, policy: Compat32) -> None:
        super().__init__(policy=policy)
        self._named: dict[str, list[tuple[str, object]]] = {}  # lower-case name: (raw, fetched)

    def get(self, name, failobj=None):
        found = self._named.get(name.lower())
        return failobj if found is None else found[0][1]

    def get_all(self, name, failobj=None):
        found = self._named.get(name.lower())
        return failobj if found is None else [fetched for _, fetched in found]

    def get_content_type(self) -> str:
        found = self._named.get("content-type")
        key = (self.policy, self.get_default_type(), found[0][0] if found else None)
        known = _CONTENT_TYPES.get(key)
        if known is None:
            known = _remember(_CONTENT_TYPES, key, Message.get_content_type(self))
        return known

    def get_param(self, param, failobj=None, header="content-type", unquote=True):
        found = self._named.get(header.lower())
        if found is None:  # as Message.get_param: no such field
            return failobj
        key = (self.policy, param.lower(), header.lower(), unquote, found[0][0])
        known = _PARAMS.get(key, _NOT_KNOWN)
        if known is _NOT_KNOWN:
            known = _remember(_PARAMS, key, Message.get_param(self, param, _ABSENT, header, unquote))
        return failobj if known is _ABSENT else known


_CACHED = 4096  # entries a cache holds; then it starts again
_CONTENT_TYPES: dict[tuple, str] = {}
_PARAMS: dict[tuple, object] = {}
_NOT_KNOWN, _ABSENT = object(), object()


def _remember(cache: dict, key: tuple, value):
    if len(cache) >= _CACHED:
        cache.clear()
    cache[key] = value
    return value


class _Unread(Exception):
    """A shape this module does not read (the full parse does)."""


def read(data: bytes, policy: Compat32) -> Message | None:
    """``data`` as the full parse with ``policy`` reads it (for ``READ`` and the bodies), or
    None when it is of a shape not read here."""
    try:
        return _message(data.decode("ascii", "surrogateescape"), policy)  # as BytesParser decodes
    except _Unread:
        return None


def _message(text: str, policy: Compat32, *, a_part: bool = False) -> Part:
    """The message in ``text``; ``a_part``: a multipart's part (its line end before the next
    delimiter is the delimiter's)."""
    head, body = _head_and_body(text)
    msg = _fields(head, policy)
    ctype = msg.get_content_type()
    if ctype.startswith("message/") or ctype == "multipart/digest":
        raise _Unread
    if ctype.startswith("multipart/"):
        _parts(msg, body, policy)
    else:
        msg.set_payload(_without_line_end(body) if a_part else body)
    return msg


def _head_and_body(text: str) -> tuple[str, str]:
    """The header block (its lines with their ends) and what follows its empty line."""
    if text[:1] == "\n" or text[:2] == "\r\n":
        return "", text[1:] if text[:1] == "\n" else text[2:]
    found = _EMPTY_LINE.search(text)
    if found is None:
        return text, ""
    return text[: found.start() + 1], text[found.end() :]


def _fields(head: str, policy: Compat32) -> Part:
    if "\r" in head and head.count("\r") != head.count("\r\n"):  # a bare CR ends a line for the parser
        raise _Unread
    if head.startswith("From "):  # the envelope line (the parser's unixfrom): not a field
        head = head.partition("\n")[2]
    head = "\n" + head
    if len(head) > 1 and (head[1] in " \t" or _ODD_LINE.search(head.rstrip("\n"))):
        raise _Unread
    msg = Part(policy)
    named, fetch = msg._named, policy.header_fetch_parse
    for name, value in _WANTED.findall(head):
        value = value.lstrip(" \t").rstrip("\r\n")  # as email.policy.Compat32.header_source_parse
        msg.set_raw(name, value)
        named.setdefault(name.lower(), []).append((value, fetch(name, value)))
    return msg


def _parts(msg: Part, body: str, policy: Compat32) -> None:
    boundary = msg.get_boundary()
    if (
        boundary is None
        or "\n" in boundary
        or "\r" in boundary
        or str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary")
    ):
        raise _Unread
    delimiter = "--" + boundary
    line = _next_boundary(body, 0, delimiter)  # the preamble is what comes before it
    if line is None or line[2]:
        raise _Unread  # no delimiter, or a close delimiter first
    while True:
        end = line[1]
        while (following := _boundary_at(body, end, delimiter)) is not None:  # doubled delimiters
            end = following[0]
        line = _next_boundary(body, end, delimiter)
        msg.attach(_message(body[end : line[0] if line else len(body)], policy, a_part=True))
        if line is None:  # the last part runs to the end
            msg.defects.append(errors.CloseBoundaryNotFoundDefect())
            return
        if line[2]:
            return  # what follows the close delimiter is the epilogue


def _boundary_at(text: str, start: int, delimiter: str) -> tuple[int, bool] | None:
    """Where the line at ``start`` ends (past its line end) and whether it closes, if it is a
    boundary line: the delimiter, perhaps "--", then only spaces and tabs."""
    if not text.startswith(delimiter, start):
        return None
    after = start + len(delimiter)
    found = _LINE_END.search(text, after)
    rest, end = (text[after : found.start()], found.end()) if found else (text[after:], len(text))
    if rest[:2] == "--" and not rest[2:].strip(" \t"):
        return end, True
    if not rest.strip(" \t"):
        return end, False
    return None


def _next_boundary(text: str, start: int, delimiter: str) -> tuple[int, int, bool] | None:
    """The first boundary line at or after ``start`` (a line's start): its start, its end and
    whether it closes."""
    at = text.find(delimiter, start)
    while at >= 0:
        if at == start or text[at - 1] in "\r\n":
            line = _boundary_at(text, at, delimiter)
            if line is not None:
                return at, line[0], line[1]
        at = text.find(delimiter, at + 1)
    return None


def _without_line_end(payload: str) -> str:
    if payload.endswith("\r\n"):
        return payload[:-2]
    return payload[:-1] if payload[-1:] in ("\r", "\n") else payload
