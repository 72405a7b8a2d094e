"""Decoders (and encoders, for tests and tools) of the two ways Cyrus hands over an event.

*Datagram* (``notifysocket: PATH``, unix datagram, what notifyd reads)::

    method\\0class\\0priority\\0user\\0mailbox\\0nopt\\0[opt\\0 ...]JSON\\0

*Stream* (``notifysocket: dlist:PATH``, one unix stream connection per event)::

    NOTIFY %(METHOD external CLASS EVENT PRIORITY NIL USER NIL MAILBOX NIL OPTIONS ()
            MESSAGE {954+}\\r\\n<JSON> FILEPATH NIL)\\r\\n

answered with ``OK NIL\\r\\n`` (see tests/data/README.md). Both decode to a
:class:`Notification`; anything else is a :class:`WireError` naming what is wrong, never another
exception. The stream parser is incremental: bytes arrive in arbitrary pieces, a ``{N+}``
literal may be split across any number of reads, and a literal's body is not re-scanned while
it is still incomplete. The dlist grammar itself is syntax.Reader's (the one reader of Cyrus's
IMAP/dlist syntax); a regex for the one frame shape Cyrus writes goes first (:func:`_fast_frame`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault.ingest.cyrus.syntax import NIL, STRICT_ATOM_CHAR, Dialect, Incomplete, Reader, SyntaxProblem

# Cyrus caps a datagram at 64 KiB; a stream frame has no cap of its own, so we set one that no
# real event reaches (a 1,520-message expunge is 130 KB) but that bounds memory per connection.
MAX_FRAME = 64 * 1024 * 1024
MAX_DATAGRAM_OPTIONS = 1024
_MAX_NESTING = 16

OK_REPLY = b"OK NIL\r\n"


class WireError(SyntaxProblem):
    """The bytes are not a notification; the message says why (and where)."""


@dataclass(frozen=True)
class Notification:
    """One event as Cyrus sent it. ``message`` is the JSON text, byte for byte; string fields are
    ``""`` where Cyrus sent an empty string or NIL."""

    message: bytes
    method: str = ""
    cls: str = ""
    priority: str = ""
    user: str = ""
    mailbox: str = ""
    options: tuple[str, ...] = ()
    filepath: str = ""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------- datagram
def decode_datagram(data: bytes) -> Notification:
    """Decode one datagram; a datagram cut short (Cyrus's own 21 KB truncation, a short read)
    lacks its final NUL and is reported as truncated."""
    if not data:
        raise WireError("empty datagram")
    if not data.endswith(b"\0"):
        raise WireError(f"truncated datagram: {len(data)} bytes without the terminating NUL")
    parts = data[:-1].split(b"\0")
    if len(parts) < 7:
        raise WireError(
            f"datagram has {len(parts)} NUL-separated fields, at least 7 expected "
            "(method, class, priority, user, mailbox, nopt, message)"
        )
    method, cls, priority, user, mailbox, nopt_raw = parts[:6]
    if not nopt_raw.isdigit() or len(nopt_raw) > 6:
        raise WireError(f"datagram option count is not a number: {nopt_raw[:20]!r}")
    nopt = int(nopt_raw)
    if nopt > MAX_DATAGRAM_OPTIONS:
        raise WireError(f"datagram claims {nopt} options (more than {MAX_DATAGRAM_OPTIONS})")
    if len(parts) != 7 + nopt:
        raise WireError(
            f"datagram has {len(parts) - 7} option fields where its count says {nopt}, "
            "or the message contains a NUL"
        )
    return Notification(
        message=parts[6 + nopt],
        method=_text(method),
        cls=_text(cls),
        priority=_text(priority),
        user=_text(user),
        mailbox=_text(mailbox),
        options=tuple(_text(o) for o in parts[6 : 6 + nopt]),
    )


def encode_datagram(n: Notification) -> bytes:
    fields = [n.method, n.cls, n.priority, n.user, n.mailbox, str(len(n.options)), *n.options]
    return b"".join(f.encode() + b"\0" for f in fields) + n.message + b"\0"


# ---------------------------------------------------------------------------- dlist
# The grammar is syntax.Reader's; what is NOTIFY-specific (the command, the fields, the limits
# per connection, the fast path) is here.
_WIRE = Dialect(max_depth=_MAX_NESTING, max_literal=MAX_FRAME, upper_keys=True)


def _string(kv: dict, key: bytes) -> str:
    value = kv.get(key, NIL)
    if value is NIL:
        return ""
    if value.__class__ is not bytes:
        raise WireError(f"NOTIFY field {key.decode()} is a list, a string was expected")
    return _text(value)


def _notification(kv) -> Notification:
    if not isinstance(kv, dict):
        raise WireError("NOTIFY must be followed by a kvlist '%(...)'")
    message = kv.get(b"MESSAGE", NIL)
    if message is NIL:
        raise WireError("NOTIFY frame has no MESSAGE")
    if message.__class__ is not bytes:
        raise WireError("NOTIFY MESSAGE is a list, a string was expected")
    options = kv.get(b"OPTIONS", [])
    if options is NIL:
        options = []
    if not isinstance(options, list):
        raise WireError("NOTIFY OPTIONS must be a list")
    options = [b"" if o is NIL else o for o in options]
    if not all(o.__class__ is bytes for o in options):
        raise WireError("NOTIFY OPTIONS must be a list of strings")
    return Notification(
        message=message,
        method=_string(kv, b"METHOD"),
        cls=_string(kv, b"CLASS"),
        priority=_string(kv, b"PRIORITY"),
        user=_string(kv, b"USER"),
        mailbox=_string(kv, b"MAILBOX"),
        options=tuple(_text(o) for o in options),
        filepath=_string(kv, b"FILEPATH"),
    )


def _parse_frame(buf: bytes) -> tuple[Notification, int]:
    """One frame from the start of ``buf``: (notification, bytes consumed); raises
    syntax.Incomplete when ``buf`` ends before the frame does."""
    r = Reader(buf, dialect=_WIRE)
    try:
        command = r.atom()
        if command.upper() != b"NOTIFY":
            raise WireError(f"unexpected command {command[:40]!r}, NOTIFY expected")
        r.expect(b" ", "a space after NOTIFY")
        n = _notification(r.value())
        r.expect(b"\r\n", "CRLF at the end of the NOTIFY frame")
    except WireError:
        raise
    except SyntaxProblem as e:
        raise WireError(str(e)) from None
    return n, r.pos


_ATOM = b"(" + STRICT_ATOM_CHAR + b"+)"
# The one shape Cyrus 3.6 writes (encode_dlist_notify), matched in one go; anything else, or a
# frame not complete yet, goes to syntax.Reader (same result, 4-6x the time).
_CYRUS_HEAD = re.compile(
    rb"NOTIFY %\(METHOD "
    + _ATOM
    + rb" CLASS "
    + _ATOM
    + rb" PRIORITY "
    + _ATOM
    + rb" USER "
    + _ATOM
    + rb" MAILBOX "
    + _ATOM
    + rb" OPTIONS \(\) MESSAGE \{([0-9]{1,10})\+?\}\r\n"
)
_CYRUS_TAIL = re.compile(rb" FILEPATH " + _ATOM + rb"\)\r\n")


def _nil_text(raw: bytes) -> str:
    return "" if raw == b"NIL" else _text(raw)


def _fast_frame(buf, max_frame: int = MAX_FRAME) -> tuple[Notification, int] | None:
    head = _CYRUS_HEAD.match(buf)
    if head is None:
        return None
    size = int(head.group(6))
    start = head.end()
    if size > max_frame or start + size > len(buf):
        return None
    tail = _CYRUS_TAIL.match(buf, start + size)
    if tail is None:
        return None
    method, cls, priority, user, mailbox = (_nil_text(g) for g in head.group(1, 2, 3, 4, 5))
    return Notification(
        message=bytes(buf[start : start + size]),
        method=method,
        cls=cls,
        priority=priority,
        user=user,
        mailbox=mailbox,
        options=(),
        filepath=_nil_text(tail.group(1)),
    ), tail.end()


class DlistFrameParser:
    """Incremental parser of NOTIFY frames on one connection.

    ``feed(data)`` returns the notifications completed by ``data`` (possibly none). When the
    bytes cannot be a frame, ``error`` is set (the frames completed before it are still
    returned) and every later ``feed`` raises it: a byte stream cannot be resynchronised.
    ``pending`` holds the bytes of the unfinished or failed frame, for quarantine.
    """

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self.error: WireError | None = None
        self._buf = bytearray()
        self._need = 1

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[Notification]:
        if self.error is not None:
            raise WireError(f"connection already failed: {self.error}")
        self._buf += data
        done: list[Notification] = []
        while self._buf and len(self._buf) >= self._need:
            fast = _fast_frame(self._buf, self.max_frame)
            try:
                n, used = fast if fast is not None else _parse_frame(bytes(self._buf))
            except Incomplete as inc:
                if inc.need > self.max_frame:
                    self.error = WireError(f"frame larger than {self.max_frame} bytes")
                self._need = inc.need
                break
            except WireError as e:
                self.error = e
                break
            del self._buf[:used]
            self._need = 1
            done.append(n)
        return done

    def close(self) -> None:
        """The peer closed: raise WireError if the stream failed or was left mid-frame."""
        if self.error is not None:
            raise self.error
        if self._buf:
            raise WireError(f"connection closed in the middle of a frame ({len(self._buf)} bytes)")


def decode_dlist_frame(frame: bytes) -> Notification:
    """Exactly one complete frame."""
    parser = DlistFrameParser()
    found = parser.feed(frame)
    parser.close()
    if len(found) != 1:
        raise WireError(f"expected one NOTIFY frame, found {len(found)}")
    return found[0]


_SPECIALS = frozenset(b' ()%\\\r\n"{}')


def _dlist_string(value: str) -> bytes:
    """An atom where Cyrus would write one, else a literal (so anything round-trips)."""
    if not value:
        return b"NIL"
    raw = value.encode()
    if value != "NIL" and not any(c in _SPECIALS or c < 0x21 or c > 0x7E for c in raw):
        return raw
    return b"{%d+}\r\n" % len(raw) + raw


def encode_dlist_notify(n: Notification) -> bytes:
    """The frame Cyrus 3.6 writes for ``n`` (the message always as a literal, like Cyrus)."""
    options = b" ".join(_dlist_string(o) for o in n.options)
    return (
        b"NOTIFY %(METHOD "
        + _dlist_string(n.method)
        + b" CLASS "
        + _dlist_string(n.cls)
        + b" PRIORITY "
        + _dlist_string(n.priority)
        + b" USER "
        + _dlist_string(n.user)
        + b" MAILBOX "
        + _dlist_string(n.mailbox)
        + b" OPTIONS ("
        + options
        + b")"
        + b" MESSAGE {%d+}\r\n" % len(n.message)
        + n.message
        + b" FILEPATH "
        + _dlist_string(n.filepath)
        + b")\r\n"
    )
