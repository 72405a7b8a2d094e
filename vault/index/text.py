"""What a message says, for the index: decoded headers, body text, attachment names, date.

Never raises: a message that fails to parse is still indexed on what could be read, and each
thing that went wrong is listed in ``problems``. Headers are decoded from RFC 2047 encoded
words (and raw 8-bit, tried as UTF-8 then Latin-1); bodies from their transfer encoding and
charset (anything Python's codecs know: ISO-2022-JP, Shift_JIS, UTF-7 ...; an unknown charset
is read as UTF-8, else Latin-1); HTML is reduced to its text.

A message is read on a fast path (vault.index.quickparse: the fields read here and the parts'
bodies, split as the stdlib parser splits them, without its line-by-line walk); one of a shape
the fast path does not read exactly as the full parse would (a header block with a non-header
line, a message/* part, a multipart with a missing delimiter ...) is parsed in full. Both give
the same Fields (tests/index/test_text.py compares them).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.utils
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.policy import Compat32

from vault.index import quickparse

MAX_BODY_CHARS = 1 << 20  # text indexed per message; the rest is rarely what anyone searches
# script/style with their content, comments, then any tag. As in a browser, a quoted attribute
# value (after "=") may hold ">", a quote anywhere else is just a character, and a "<" not
# followed by a letter (or ! / ?) is text. Possessive: no backtracking, whatever the markup; a
# value longer than 2000 characters is scanned as plain characters. A tag's inside is the loop
# "plain run, then a quoted value or a lone quote or =, then a plain run ..." unrolled, and only
# script/style ignore case (the letters a case-blind [A-Za-z] also takes, K, İ, ı and ſ, are
# listed): a third cheaper than one alternation per step under re.I, the same matches.
_TAG = re.compile(
    r"<(?i:(script|style))\b.*?(?i:</\1)\s*>|<!--.*?-->"
    r"|</?[A-Za-z\u0130\u0131\u017f\u212a!?][^>\"'=]*+"
    r"(?:(?:=\s*\"[^\"]{0,2000}\"|=\s*'[^']{0,2000}'|[\"'=])[^>\"'=]*+)*+>",
    re.S,
)
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
DATE_RANGE = (datetime(1678, 1, 1, tzinfo=UTC), datetime(2262, 1, 1, tzinfo=UTC))


@dataclass
class Fields:
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    message_id: str = ""
    date: datetime | None = None
    body: str = ""
    filenames: list[str] = field(default_factory=list)
    size: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def has_attachment(self) -> bool:
        return bool(self.filenames)


def charset_decode(raw: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; an unknown or wrong one falls back without failing."""
    if charset:
        name = charset.strip().strip('"').lower()
        try:
            codecs.lookup(name)
        except LookupError:
            name = ""  # unknown: fall back below
        if name:
            try:
                return raw.decode(name)
            except (UnicodeDecodeError, ValueError):
                return raw.decode(name, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_header(value) -> str:
    """A header value as text: RFC 2047 encoded words decoded in their charsets, raw 8-bit
    read as UTF-8 (else Latin-1); malformed words are kept as written."""
    if value is None:
        return ""
    text = _unsurrogate(str(value))
    if "=?" not in text:
        return " ".join(text.split())  # runs of white space as one space (str.split's is re's \s)
    out, last, after_word = [], 0, False
    for m in _ENCODED_WORD.finditer(text):
        between = text[last : m.start()]
        if not (after_word and not between.strip()):  # RFC 2047: space between words is dropped
            out.append(between)
        out.append(_decode_word(m))
        last, after_word = m.end(), True
    out.append(text[last:])
    return " ".join("".join(out).split())


def _decode_word(m: re.Match) -> str:
    charset, encoding, payload = m.group(1).split("*")[0], m.group(2).lower(), m.group(3)
    try:
        if encoding == "b":
            raw = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
        else:
            raw = _QP_ESCAPE.sub(lambda e: bytes([int(e.group(1), 16)]), payload.replace("_", " ").encode())
    except (binascii.Error, ValueError):
        return m.group(0)
    return charset_decode(raw, charset)


def _unsurrogate(text: str) -> str:
    """Undecodable header bytes arrive as surrogates (surrogateescape): read them as UTF-8,
    else Latin-1."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    raw = text.encode("utf-8", "surrogateescape")
    return charset_decode(raw, None)


class _Policy(Compat32):
    """compat32, except that a header with raw 8-bit bytes reads as text (UTF-8, else Latin-1)
    where compat32 would turn every such byte into U+FFFD; parameters (file names, charsets)
    are read through it too."""

    def header_fetch_parse(self, name, value):
        return _unsurrogate(value) if isinstance(value, str) else value


POLICY = _Policy()


def _addresses(msg: Message, name: str) -> str:
    values = msg.get_all(name) or []
    return " ".join(decode_header(v) for v in values)


def _date(msg: Message, problems: list[str]) -> datetime | None:
    raw = msg.get("date")
    if raw is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        problems.append(f"unreadable Date: {str(raw)[:60]!r}")
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" or no zone: RFC 5322 says UTC
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if not DATE_RANGE[0] <= when <= DATE_RANGE[1]:  # what the index can hold (ns since 1970, 64 bit)
        problems.append(f"Date out of range, kept as the nearest bound: {str(raw)[:60]!r}")
        return min(max(when, DATE_RANGE[0]), DATE_RANGE[1])  # year 0102 still sorts as very old
    return when


def html_text(markup: str) -> str:
    """The words of an HTML part. One regular expression rather than html.parser: on the
    SpamAssassin corpus html.parser costs ~13x as much (0.8 s of a 2.4 s index build), and
    for words alone the difference is nil."""
    return html.unescape(_TAG.sub(" ", markup))


def part_text(part: Message, problems: list[str], html=html_text) -> str:
    """A text part's content decoded from its transfer encoding and charset; HTML reduced to
    text by ``html`` (the index's word extractor unless told otherwise)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception as e:
        problems.append(f"undecodable {part.get_content_type()} part: {e}")
        return ""
    if not isinstance(payload, bytes):
        return ""
    text = charset_decode(payload, part.get_content_charset())
    return html(text) if part.get_content_subtype() == "html" else text


def filename_of(part: Message) -> str | None:
    """A part's file name: Content-Disposition's, else Content-Type's name (RFC 2231 or 2047)."""
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        param = part.get_param("name", header="content-type")
        if isinstance(param, tuple):  # RFC 2231 (charset, language, value)
            name = email.utils.collapse_rfc2231_value(param)
        else:
            name = param
    return decode_header(name) if name else None


def _may_name(part: Message) -> bool:
    """Whether a part's headers could give it a file name at all (the parameter parse that
    ``filename_of`` does costs more than this look)."""
    return (
        "name" in str(part.get("content-disposition") or "").lower()
        or "name" in str(part.get("content-type") or "").lower()
    )


def parse(data: bytes) -> Message:
    """The one MIME parse of a message (stdlib email, the lenient policy above); raises only
    for the truly broken."""
    return email.message_from_bytes(data, policy=POLICY)


def header_fields(msg: Message, fields: Fields) -> Fields:
    """From, To, Cc, Bcc, Subject, Message-ID and Date of ``msg``, decoded, into ``fields``."""
    problems = fields.problems
    fields.from_ = _addresses(msg, "from")
    fields.to = _addresses(msg, "to")
    fields.cc = _addresses(msg, "cc")
    fields.bcc = _addresses(msg, "bcc")
    fields.subject = decode_header(msg.get("subject"))
    found = _MESSAGE_ID.search(str(msg.get("message-id") or ""))
    fields.message_id = found.group(1) if found else str(msg.get("message-id") or "").strip()
    fields.date = _date(msg, problems)
    return fields


def extract(data: bytes, *, fast: bool = True) -> Fields:
    """The Fields of a message (``fast=False``: always the full parse; the same result)."""
    fields = Fields(size=len(data))
    problems = fields.problems
    try:
        msg = (quickparse.read(data, POLICY) if fast else None) or parse(data)
    except Exception as e:  # the parser is lenient; this is for the truly broken
        problems.append(f"unparseable: {e}")
        fields.body = charset_decode(data[:MAX_BODY_CHARS], None)
        return fields
    header_fields(msg, fields)
    texts, size = [], 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = filename_of(part) if _may_name(part) else None
        disposition = str(part.get("content-disposition") or "").split(";")[0].strip().lower()
        if name:
            fields.filenames.append(name)
        if part.get_content_maintype() != "text" or disposition == "attachment":
            continue
        if size < MAX_BODY_CHARS:
            text = part_text(part, problems)
            texts.append(text)
            size += len(text)
    for defect in msg.defects:
        problems.append(type(defect).__name__)
    fields.body = " ".join(texts)[:MAX_BODY_CHARS]  # runs of spaces: the tokenizer skips them
    return fields
