"""Load files for review platforms: an export as a Concordance DAT or an EDRM XML 1.2 file,
with natives and one extracted-text file per document, as Relativity, Nuix or Reveal load
them. The export engine (``export.py``) hands each message it wrote to a ``Producer``; the
producer makes the message's family of documents (``documents.py``), numbers them, writes
attachment natives and texts, and at the end the load file. Every file it writes is listed
with its sha256 for the signed manifest, so ``verify-export`` checks them all.

Layout (paths in the load file are relative to it, Windows-style, as the platforms expect):

- ``messages/NNNNNN-<sha>.eml``: the message natives are the export's own message files, the
  very bytes the manifest proves against the ledger (not a second copy);
- ``natives/<CONTROL>_<name>``: attachments (and attached messages), names sanitised;
- ``text/<CONTROL>.txt``: extracted text, UTF-8 with BOM, one per document (empty for a
  binary attachment: vault has no converters; the platform extracts it);
- ``loadfile.dat`` or ``loadfile.xml``. No images are produced, so there is no OPT file.

Control numbers (``--prefix ABC --start N``): ``ABC`` then N zero-padded to 7 digits, one per
document in export order, a message then its attachments depth first: BEGDOC = ENDDOC = DOCID
(a native production has no pages), and a family's numbers are contiguous (BEGATTACH to
ENDATTACH). Dates are UTC, ISO 8601 with the zone: DATESENT from the Date header, DATERECEIVED
the archived (internal) date.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from vault.model import custodian_of, parse_time
from vault.restore.documents import Document, family, safe_name

KINDS = ("concordance", "edrm")
DIGITS = 7
FIELD_SEP, QUOTE, NEWLINE = "\x14", "\u00fe", "\u00ae"  # Concordance: DC4, þ, ®
MULTI = "; "  # between the values of a multi-value field (ATTACHIDS, ALLCUSTODIANS)
FIELDS = [
    "BEGDOC", "ENDDOC", "DOCID", "PARENTID", "ATTACHIDS", "BEGATTACH", "ENDATTACH", "DOCTYPE",
    "CUSTODIAN", "ALLCUSTODIANS", "FROM", "TO", "CC", "BCC", "SUBJECT", "DATESENT", "DATERECEIVED",
    "FOLDER", "MESSAGEID", "FILENAME", "FILEEXT", "FILESIZE", "MIMETYPE", "MD5HASH", "SHA1HASH",
    "SHA256HASH", "NATIVEPATH", "TEXTPATH", "VAULTITEM",
]  # fmt: skip
EDRM_TYPES = {"DATESENT": "DateTime", "DATERECEIVED": "DateTime", "FILESIZE": "LongInteger"}
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,20}")


class ProductionError(ValueError):
    pass


@dataclass(frozen=True)
class Production:
    """What to produce: the load file kind and the control numbers."""

    load_file: str
    prefix: str = ""
    start: int = 1

    def check(self) -> None:
        if self.load_file not in KINDS:
            raise ProductionError(f"unknown load file {self.load_file!r} (concordance or edrm)")
        if not _PREFIX.fullmatch(self.prefix):
            raise ProductionError(
                f"bad control-number prefix {self.prefix!r}: up to 20 letters, digits, '_', '.', '-'"
            )
        if self.start < 0:
            raise ProductionError(f"--start must be 0 or more, not {self.start}")

    def control(self, n: int) -> str:
        return f"{self.prefix}{n:0{DIGITS}d}"


@dataclass
class _Row:
    """What the load file says of one document (its bytes are on disk by then)."""

    kind: str
    mime_type: str
    fields: dict[str, str]
    text_md5: str
    text_size: int
    children: list[str] = field(default_factory=list)


def _iso(when: datetime | None) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds") if when else ""


def _windows(rel: str) -> str:
    return rel.replace("/", "\\")


class Producer:
    """Documents, natives and texts for each exported message; the load file at the end."""

    def __init__(self, root: Path, production: Production, catalog) -> None:
        production.check()
        self.root, self.production, self.catalog = Path(root), production, catalog
        self.next = production.start
        self.rows: list[_Row] = []
        self.files: list[dict] = []  # every file written: path, sha256, role

    def _write(self, rel: str, data: bytes, role: str) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.files.append({"file": rel, "sha256": hashlib.sha256(data).hexdigest(), "role": role})

    def _row(self, doc: Document, control: str, native: str, name: str, fields: dict[str, str]) -> _Row:
        text_rel = f"text/{control}.txt"
        text = doc.text.encode("utf-8-sig")
        self._write(text_rel, text, "text")
        is_message = doc.kind == "message"
        return _Row(
            doc.kind,
            doc.mime_type,
            {
                **fields,
                "BEGDOC": control,
                "ENDDOC": control,
                "DOCID": control,
                "DOCTYPE": "Email" if is_message else "Attachment",
                "FROM": doc.from_,
                "TO": doc.to,
                "CC": doc.cc,
                "BCC": doc.bcc,
                "SUBJECT": doc.subject,
                "DATESENT": _iso(doc.date_sent) if is_message else "",
                "MESSAGEID": doc.message_id,
                "FILENAME": doc.filename or name,
                "FILEEXT": PurePosixPath(name).suffix.lstrip(".").lower(),
                "FILESIZE": str(len(doc.native)),
                "MIMETYPE": doc.mime_type,
                "MD5HASH": hashlib.md5(doc.native).hexdigest(),
                "SHA1HASH": hashlib.sha1(doc.native).hexdigest(),
                "SHA256HASH": hashlib.sha256(doc.native).hexdigest(),
                "NATIVEPATH": _windows(native),
                "TEXTPATH": _windows(text_rel),
            },
            hashlib.md5(text).hexdigest(),
            len(text),
        )

    def add(self, rec: dict, data: bytes) -> None:
        """The family of one exported message: ``rec`` is its manifest record (``file`` is its
        native), ``data`` its bytes."""
        item = self.catalog.item(rec["item"]) or {}
        mailbox = item.get("mailbox") or (rec.get("folders") or [""])[0]
        custodian = custodian_of(mailbox) or ""
        folder = mailbox.split("/", 2)[2] if custodian and mailbox.count("/") >= 2 else mailbox
        shared = {
            "CUSTODIAN": custodian,
            "ALLCUSTODIANS": MULTI.join(rec.get("custodians") or [custodian]),
            "FOLDER": folder,
            "VAULTITEM": rec["item"],
        }
        top = family(data)
        first = len(self.rows)
        parent_of: dict[int, _Row] = {}  # by id() of a document: its parent's row
        for doc in top.walk():
            control = self.production.control(self.next)
            self.next += 1
            if doc is top:
                native = rec["file"]
                name = PurePosixPath(native).name
            else:
                name = doc.filename or (
                    "message.eml" if doc.kind == "message" else safe_name("", doc.mime_type)
                )
                if doc.kind == "message" and "." not in name:
                    name += ".eml"
                native = f"natives/{control}_{safe_name(name, doc.mime_type)}"
                self._write(native, doc.native, "native")
            parent = parent_of.get(id(doc))
            received = (
                _iso(parse_time(rec["internal_date"])) if doc is top and rec.get("internal_date") else ""
            )
            row = self._row(
                doc,
                control,
                native,
                name,
                {**shared, "PARENTID": parent.fields["DOCID"] if parent else "", "DATERECEIVED": received},
            )
            if parent is not None:
                parent.children.append(control)
            parent_of.update((id(child), row) for child in doc.children)
            self.rows.append(row)
        begin, end = self.rows[first].fields["DOCID"], self.rows[-1].fields["DOCID"]
        for row in self.rows[first:]:
            row.fields.update(BEGATTACH=begin, ENDATTACH=end, ATTACHIDS=MULTI.join(row.children))

    def finish(self) -> dict:
        """Write the load file; the manifest's ``production`` section (every file with its
        sha256)."""
        if self.production.load_file == "concordance":
            self._write("loadfile.dat", self._dat(), "loadfile")
        else:
            self._write("loadfile.xml", self._edrm(), "loadfile")
        return {
            "load_file": self.production.load_file,
            "prefix": self.production.prefix,
            "first": self.rows[0].fields["DOCID"] if self.rows else None,
            "last": self.rows[-1].fields["DOCID"] if self.rows else None,
            "documents": len(self.rows),
            "images": 0,  # no imaging: no OPT file
            "fields": FIELDS,
            "files": self.files,
        }

    def _dat(self) -> bytes:
        def line(values) -> str:
            return FIELD_SEP.join(QUOTE + _dat_value(v) + QUOTE for v in values) + "\r\n"

        rows = [line(FIELDS)] + [line(row.fields[f] for f in FIELDS) for row in self.rows]
        return "".join(rows).encode("utf-8-sig")

    def _edrm(self) -> bytes:
        root = ET.Element(
            "Root", MajorVersion="1", MinorVersion="2", Description="vault production", Locale="en-US"
        )
        root.set("DataInterchangeType", "Export")
        batch = ET.SubElement(root, "Batch", Name=self.rows[0].fields["DOCID"] if self.rows else "empty")
        documents = ET.SubElement(batch, "Documents")
        relationships = []
        for row in self.rows:
            f = row.fields
            doc = ET.SubElement(
                documents,
                "Document",
                DocID=f["DOCID"],
                DocType="Message" if row.kind == "message" else "File",
                MimeType=row.mime_type,
            )
            tags = ET.SubElement(doc, "Tags")
            for name in FIELDS:
                if f[name]:  # an empty DateTime is not a date: empty tags are left out
                    ET.SubElement(
                        tags, "Tag", TagName=name, TagDataType=EDRM_TYPES.get(name, "Text"), TagValue=f[name]
                    )
            files = ET.SubElement(doc, "Files")
            for file_type, key, size, md5 in (
                ("Native", "NATIVEPATH", f["FILESIZE"], f["MD5HASH"]),
                ("Text", "TEXTPATH", str(row.text_size), row.text_md5),
            ):
                folder, _, name = f[key].rpartition("\\")
                ET.SubElement(ET.SubElement(files, "File", FileType=file_type), "ExternalFile").attrib.update(
                    FilePath=folder, FileName=name, FileSize=size, Hash=md5
                )
            location = ET.SubElement(ET.SubElement(doc, "Locations"), "Location")
            ET.SubElement(location, "Custodian").text = f["CUSTODIAN"]
            ET.SubElement(location, "LocationURI").text = f["FOLDER"]
            relationships += [(f["DOCID"], child) for child in row.children]
        rels = ET.SubElement(batch, "Relationships")
        for parent, child in relationships:
            ET.SubElement(rels, "Relationship", Type="Attachment", ParentDocId=parent, ChildDocId=child)
        ET.indent(root, space=" ")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
        ).encode()


def _dat_value(value: str) -> str:
    """A field's value inside its þ qualifiers: line ends as ®, a þ in the value doubled."""
    return re.sub(r"\r\n|\r|\n", NEWLINE, value).replace(QUOTE, QUOTE * 2)
