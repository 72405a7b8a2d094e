"""What a message says, for the index: decoded headers, body text, attachment names, date.

Never raises: a message that fails to parse is still indexed on what could be read, and each
thing that went wrong is listed in ``problems``. Headers are decoded from RFC 2047 encoded
words (and raw 8-bit, tried as UTF-8 then Latin-1); bodies from their transfer encoding and
charset (anything Python's codecs know: ISO-2022-JP, Shift_JIS, UTF-7 ...; an unknown charset
falls back to UTF-8 with replacement); HTML is reduced to its text.
"""
from __future__ import annotations

import codecs
import email
import email.header
import email.utils
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message

MAX_BODY_CHARS = 1 << 20  # text indexed per message; the rest is rarely what anyone searches
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_SPACE = re.compile(r"\s+")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
DATE_RANGE = (datetime(1678, 1, 1, tzinfo=timezone.utc), datetime(2262, 1, 1, tzinfo=timezone.utc))


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
            name = None
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
    """An RFC 2047 header value as text (None and oddities give what can be read)."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = str(value)
    if "=?" not in text:
        return _SPACE.sub(" ", _unsurrogate(text)).strip()
    try:
        parts = email.header.decode_header(text)
    except Exception:  # malformed encoded words: keep the raw text
        return _SPACE.sub(" ", _unsurrogate(text)).strip()
    out = []
    for chunk, charset in parts:
        out.append(charset_decode(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return _SPACE.sub(" ", "".join(out)).strip()


def _unsurrogate(text: str) -> str:
    """compat32 keeps undecodable header bytes as surrogates: read them as UTF-8 or Latin-1."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return charset_decode(raw, None)


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
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    if not DATE_RANGE[0] <= when <= DATE_RANGE[1]:  # what the index can hold (ns since 1970, 64 bit)
        problems.append(f"Date out of range, kept as the nearest bound: {str(raw)[:60]!r}")
        return min(max(when, DATE_RANGE[0]), DATE_RANGE[1])  # year 0102 still sorts as very old
    return when


def html_text(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", markup))


def _part_text(part: Message, problems: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception as e:
        problems.append(f"undecodable {part.get_content_type()} part: {e}")
        return ""
    if not isinstance(payload, bytes):
        return ""
    text = charset_decode(payload, part.get_content_charset())
    return html_text(text) if part.get_content_subtype() == "html" else text


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        name = part.get_param("name", header="content-type")
        if isinstance(name, tuple):  # RFC 2231 (charset, language, value)
            name = email.utils.collapse_rfc2231_value(name)
    return decode_header(name) if name else None


def extract(data: bytes) -> Fields:
    fields = Fields(size=len(data))
    problems = fields.problems
    try:
        msg = email.message_from_bytes(data)
    except Exception as e:  # the parser is lenient; this is for the truly broken
        problems.append(f"unparseable: {e}")
        fields.body = charset_decode(data[:MAX_BODY_CHARS], None)
        return fields
    fields.from_ = _addresses(msg, "from")
    fields.to = _addresses(msg, "to")
    fields.cc = _addresses(msg, "cc")
    fields.bcc = _addresses(msg, "bcc")
    fields.subject = decode_header(msg.get("subject"))
    found = _MESSAGE_ID.search(str(msg.get("message-id") or ""))
    fields.message_id = found.group(1) if found else str(msg.get("message-id") or "").strip()
    fields.date = _date(msg, problems)
    texts, size = [], 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = _filename(part)
        disposition = str(part.get("content-disposition") or "").split(";")[0].strip().lower()
        if name:
            fields.filenames.append(name)
        if part.get_content_maintype() != "text" or disposition == "attachment":
            continue
        if size < MAX_BODY_CHARS:
            text = _part_text(part, problems)
            texts.append(text)
            size += len(text)
    for defect in msg.defects:
        problems.append(type(defect).__name__)
    fields.body = _SPACE.sub(" ", " ".join(texts))[:MAX_BODY_CHARS]
    return fields
