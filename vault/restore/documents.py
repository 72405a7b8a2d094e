"""A message as review documents: the message itself and its attachments as child documents,
each with its native bytes, extracted text and the e-mail fields a load file carries.

The MIME parse is the index's (``vault.index.text``: one parser per wire format); this module
only decides what is a document and what is its text:

- **Body text** of a message: its ``text/plain`` parts; ``text/html`` reduced to text with
  the stdlib ``html.parser`` (line breaks kept at block elements, so the text reads as the
  message did); of a ``multipart/alternative`` only the plain version (else the HTML one).
- **Attachments**: every leaf part that is not body text (a file name, ``Content-Disposition:
  attachment``, or a non-text type), and every attached message (``message/rfc822``), which
  is a document of its own with its own attachments as its children (depth first, so a
  family is one contiguous run of documents).
- **Extracted text**: for a message, a header block (From, To, Cc, Bcc, Subject, Date,
  Attachments) then the body text; for a text attachment its decoded text; for any other
  attachment nothing (vault has no converters for PDF, Office and images: the text file is
  written empty, as review platforms expect, and the platform extracts the text itself).
- **File names** are sanitised for every file system a production lands on: no path, no
  control or Windows-reserved characters or names, at most 120 characters, extension kept.
"""

from __future__ import annotations

import io
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email.generator import BytesGenerator
from email.message import Message
from html.parser import HTMLParser

from vault.index import text as mime

MAX_NAME = 120
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)
# characters a load file cannot carry: C0/C1 controls (but tab and line ends), lone surrogates
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BLOCK = {
    "address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "form", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td", "th",
    "tr", "ul",
}  # fmt: skip


@dataclass
class Document:
    """One review document. ``kind``: ``message`` (the archived message or an attached one)
    or ``attachment``."""

    kind: str
    native: bytes
    mime_type: str
    filename: str  # as the message names it (attachments) or "" (the archived message)
    text: str
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    message_id: str = ""
    date_sent: datetime | None = None
    children: list[Document] = field(default_factory=list)

    def walk(self):
        """This document and its descendants, depth first: the order of a family."""
        yield self
        for child in self.children:
            yield from child.walk()


def clean(value: str) -> str:
    """A field value a load file can carry: controls (but tab, CR, LF) become spaces."""
    return _CONTROL.sub(" ", value)


def safe_name(name: str, mime_type: str = "application/octet-stream") -> str:
    """``name`` as a file name on any file system (Windows included), extension kept."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", _CONTROL.sub("_", name)).strip(" .")
    if not name:
        name = "attachment" + (mimetypes.guess_extension(mime_type) or ".bin")
    if _RESERVED.match(name):
        name = "_" + name
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and 0 < len(ext) <= 16 else ""
        name = (stem if ext else name)[: MAX_NAME - len(ext)].rstrip(" .") + ext
    return name


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """The text of an HTML part as a reader sees it: words, with a line break per block."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient; this is for the truly broken
        return mime.html_text(markup)
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    # a <style> or <script> never closed hides the rest from a browser; a reviewer wants it
    return text or " ".join(mime.html_text(markup).split())


def family(data: bytes) -> Document:
    """The archived message ``data`` and its attachments, as documents."""
    try:
        msg = mime.parse(data)
    except Exception:  # unparseable: the message is a document with its bytes as text
        return Document("message", data, "message/rfc822", "", clean(mime.charset_decode(data, None)))
    return _message(msg, data)


def _message(msg: Message, native: bytes) -> Document:
    fields = mime.header_fields(msg, mime.Fields())
    bodies: list[str] = []
    attachments: list[Message] = []
    _walk(msg, bodies, attachments)
    doc = Document(
        "message",
        native,
        "message/rfc822",
        "",
        "",
        from_=clean(fields.from_),
        to=clean(fields.to),
        cc=clean(fields.cc),
        bcc=clean(fields.bcc),
        subject=clean(fields.subject),
        message_id=clean(fields.message_id),
        date_sent=fields.date,
    )
    doc.children = [_attachment(part) for part in attachments]
    header = [
        ("From", doc.from_),
        ("To", doc.to),
        ("Cc", doc.cc),
        ("Bcc", doc.bcc),
        ("Subject", doc.subject),
        ("Date", doc.date_sent.isoformat() if doc.date_sent else ""),
        ("Attachments", "; ".join(c.filename for c in doc.children if c.filename)),
    ]
    head = "\n".join(f"{name}: {value}" for name, value in header if value)
    doc.text = clean(head + "\n\n" + "\n\n".join(b.strip("\r\n") for b in bodies if b.strip()))
    return doc


def _walk(part: Message, bodies: list[str], attachments: list[Message], top: bool = True) -> None:
    ctype = part.get_content_type()
    if ctype == "message/rfc822" and not top:
        attachments.append(part)
        return
    if part.is_multipart():
        subparts = [p for p in part.get_payload() if isinstance(p, Message)]
        if ctype == "multipart/alternative" and subparts:
            plain = [p for p in subparts if p.get_content_type() == "text/plain"]
            html = [p for p in subparts if p.get_content_type() == "text/html"]
            subparts = plain[:1] or html[:1] or subparts[-1:]
        for sub in subparts:
            _walk(sub, bodies, attachments, top=False)
        return
    disposition = str(part.get("content-disposition") or "").split(";")[0].strip().lower()
    if part.get_content_maintype() == "text" and disposition != "attachment" and not mime.filename_of(part):
        bodies.append(mime.part_text(part, [], html=html_to_text))
    else:
        attachments.append(part)


def _attachment(part: Message) -> Document:
    ctype = part.get_content_type()
    name = clean(mime.filename_of(part) or "")
    inner = part.get_payload()
    if ctype == "message/rfc822" and isinstance(inner, list) and inner and isinstance(inner[0], Message):
        buf = io.BytesIO()
        BytesGenerator(buf, mangle_from_=False, policy=mime.POLICY).flatten(inner[0])
        doc = _message(inner[0], buf.getvalue())
        doc.filename = name
        return doc
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    native = payload if isinstance(payload, bytes) else b""
    text = mime.part_text(part, [], html=html_to_text) if part.get_content_maintype() == "text" else ""
    return Document("attachment", native, ctype, name, clean(text))
