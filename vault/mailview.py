"""A message taken apart for reading on a page: headers, a text body, attachments.

Nothing of a message's own markup reaches a reader: an HTML-only body is turned into plain
text here (tags dropped, scripts, styles and heads left out, entities decoded) and the page
escapes that text like any other. Attachments are listed with their name, type and size, and
given back as bytes on their own (the page serves them as downloads, never inline).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from html.parser import HTMLParser

SUMMARY_HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID")
SHOWN_HEADERS = (*SUMMARY_HEADERS, "Reply-To", "In-Reply-To", "X-Spam-Flag", "X-Spam-Status")
MAX_TEXT = 512 * 1024  # longer bodies are cut on the page (the download is whole)


@dataclass
class Attachment:
    index: int  # position among the message's attachments, from 0
    filename: str
    content_type: str
    size: int


@dataclass
class MessageView:
    headers: list[tuple[str, str]]
    text: str
    from_html: bool  # the text was made from an HTML body
    attachments: list[Attachment] = field(default_factory=list)


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_text(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a header the policy cannot parse
        raw = msg.get_all(name, failobj=[])
        value = raw[0] if raw else None
    return " ".join(str(value).split()) if value is not None else ""


def summary(data: bytes) -> dict[str, str]:
    """From, To, Date, Subject... of a message, read from its header block only."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    msg = email.message_from_bytes(data[: end + 4] if end >= 0 else data, policy=email.policy.default)
    return {name.lower(): header_text(msg, name) for name in SUMMARY_HEADERS}


def _attachments(msg: EmailMessage) -> list[Message]:
    return [
        part
        for part in msg.walk()
        if not part.is_multipart() and (part.get_content_disposition() == "attachment" or part.get_filename())
    ]


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text_of(part: Message) -> str:
    data = _payload(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def view(data: bytes) -> MessageView:
    msg = parse(data)
    headers = [(name, header_text(msg, name)) for name in SHOWN_HEADERS if msg.get(name) is not None]
    attachments = _attachments(msg)
    body = msg.get_body(preferencelist=("plain", "html"))
    text, from_html = "", False
    if body is not None and body not in attachments:
        text = _text_of(body)
        if body.get_content_subtype() == "html":
            text, from_html = html_to_text(text), True
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[... cut: download the message for the rest]"
    listed = [
        Attachment(i, p.get_filename() or f"attachment-{i + 1}", p.get_content_type(), len(_payload(p)))
        for i, p in enumerate(attachments)
    ]
    return MessageView(headers, text, from_html, listed)


def attachment(data: bytes, index: int) -> tuple[Attachment, bytes]:
    parts = _attachments(parse(data))
    if not 0 <= index < len(parts):
        raise LookupError(f"the message has no attachment {index}")
    part = parts[index]
    payload = _payload(part)
    return Attachment(
        index, part.get_filename() or f"attachment-{index + 1}", part.get_content_type(), len(payload)
    ), payload


def is_spam(headers: Message) -> bool:
    """``X-Spam-Flag: YES`` or ``X-Spam-Status: Yes, ...`` (SpamAssassin, rspamd's compatible
    headers)."""
    flag = header_text(headers, "X-Spam-Flag").strip().lower()
    status = header_text(headers, "X-Spam-Status").strip().lower()
    return flag in ("yes", "true") or status.startswith("yes")


class _Text(HTMLParser):
    _SKIP = {"script", "style", "head", "title", "template", "noscript"}
    _BREAK = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.out)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", text).strip()
