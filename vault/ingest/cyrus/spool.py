"""A Cyrus 3.6 spool read directly from disk, as the collector does on the mail host.

Layout (``mailbox_legacy_dirs: 0``): ``{partition}/uuid/<id[0]>/<id[1]>/<mailboxID>/`` holds
``<UID>.`` per message (its mtime is the internal date) beside ``cyrus.header`` (a dlist:
``%(T e N user.alice I <uniqueid> A %(alice lrswipkxtecdan) U ($Custom))``) and ``cyrus.index``
(big-endian binary: a 160-byte header, then one 112-byte record per message, each with a
CRC32 of its bytes, minor version 17 in 3.6).

Reading the files has no side effects on the server: no login (so no Login/Logout events
and no \\Recent or \\Seen changes), no ACL needed. Cyrus rewrites index records in place, so
a record may be read half-written: the per-record and header CRCs catch that and the read is
retried (:func:`read_index`).
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vault.ingest.cyrus import syntax as imap_syntax
from vault.model import format_time

INDEX_MINOR_VERSIONS = (17,)
HEADER_MAGIC = b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
_HEADER_FIELDS = struct.Struct(">IIIIII")  # generation, format, minor, start, record size, records
_MAILBOX_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# cyrus-imapd imap/mailbox.h
SYSTEM_FLAG_BITS = (
    (1 << 0, "\\Answered"),
    (1 << 1, "\\Flagged"),
    (1 << 2, "\\Deleted"),
    (1 << 3, "\\Draft"),
    (1 << 4, "\\Seen"),
)
FLAG_INTERNAL_UNLINKED = 1 << 30
FLAG_INTERNAL_EXPUNGED = 1 << 31
MAX_USER_FLAGS = 128
DELETED_PREFIX = "DELETED."


class CyrusSpoolError(Exception):
    """A spool file is missing or not in the format we know; the message names the file."""


class SpoolFormatError(CyrusSpoolError, ValueError):
    pass


class MailboxNotFound(CyrusSpoolError):
    pass


class MessageGone(CyrusSpoolError):
    pass


# ---------------------------------------------------------------- names


def external_name(internal: str) -> str:
    """``user.alice.Sub^dir`` -> ``user/alice/Sub.dir`` (unixhierarchysep: '.' inside a name
    is stored as '^')."""
    return "/".join(part.replace("^", ".") for part in internal.split("."))


def valid_mailbox_id(mailbox_id: str) -> bool:
    return isinstance(mailbox_id, str) and bool(_MAILBOX_ID.match(mailbox_id))


# ---------------------------------------------------------------- cyrus.header


@dataclass(frozen=True)
class MailboxHeader:
    name: str  # external, with '/'
    uniqueid: str
    acl: dict[str, str]
    user_flags: tuple[str, ...]

    @property
    def deleted(self) -> bool:
        """Deleted with delayed delete: Cyrus renamed it ``DELETED.<name>.<hex time>``."""
        return self.name.startswith(DELETED_PREFIX.replace(".", "/"))


def parse_mailbox_header(data: bytes, where: str = "cyrus.header") -> MailboxHeader:
    """The dlist record of a Cyrus 3.x cyrus.header; SpoolFormatError naming ``where`` if the
    file is anything else (a 2.x header included: see :func:`parse_legacy_header`)."""
    if not data.startswith(HEADER_MAGIC):
        raise SpoolFormatError(f"{where}: not a Cyrus mailbox header (bad magic)")
    body = data[len(HEADER_MAGIC) :]
    start = body.find(b"%(")
    if start < 0:
        raise SpoolFormatError(f"{where}: no dlist record (Cyrus before 3.0 is not supported)")
    try:
        values = imap_syntax.parse(body[start:])
    except imap_syntax.SyntaxProblem as e:
        raise SpoolFormatError(f"{where}: {e}") from None
    record = values[0] if values else None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("N"), str)
        or not isinstance(record.get("I"), str)
    ):
        raise SpoolFormatError(f"{where}: dlist record without name (N) and uniqueid (I)")
    acl = record.get("A") or {}
    flags = record.get("U") or []
    if not isinstance(acl, dict) or not all(isinstance(v, str) for v in acl.values()):
        raise SpoolFormatError(f"{where}: ACL (A) is not a map of identifier to rights")
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise SpoolFormatError(f"{where}: user flags (U) is not a list of names")
    return MailboxHeader(external_name(record["N"]), record["I"], dict(acl), tuple(flags))


def parse_legacy_header(data: bytes) -> str | None:
    """The uniqueid a Cyrus 2.x cyrus.header names, or None when ``data`` is not one (or names
    none that is valid). 2.x wrote lines, not a dlist: the magic, two quote lines, then
    ``quotaroot<TAB>uniqueid``. Only imports of old spools meet it; the collector reads 3.6."""
    if not data.startswith(HEADER_MAGIC):
        return None
    lines = data[len(HEADER_MAGIC) :].split(b"\n")
    if len(lines) < 3:
        return None
    fields = lines[2].split(b"\t")
    if len(fields) < 2:
        return None
    uniqueid = fields[1].strip().decode("ascii", "replace")
    return uniqueid if valid_mailbox_id(uniqueid) else None


# ---------------------------------------------------------------- cyrus.index


@dataclass(frozen=True)
class IndexRecord:
    uid: int
    internal_date: int  # seconds since the epoch
    size: int
    system_flags: int
    user_flags: int  # bit n = the header's n-th user flag
    modseq: int

    @property
    def expunged(self) -> bool:
        return bool(self.system_flags & FLAG_INTERNAL_EXPUNGED)

    def flags(self, names: tuple[str, ...]) -> list[str]:
        out = [name for bit, name in SYSTEM_FLAG_BITS if self.system_flags & bit]
        out += [name for n, name in enumerate(names[:MAX_USER_FLAGS]) if self.user_flags >> n & 1]
        return out


@dataclass(frozen=True)
class MailboxIndex:
    minor_version: int
    uidvalidity: int
    highestmodseq: int
    last_uid: int
    records: list[IndexRecord] = field(default_factory=list)

    @property
    def present(self) -> list[IndexRecord]:
        return [r for r in self.records if not r.expunged]


def _crc_ok(chunk: bytes) -> bool:
    return zlib.crc32(chunk[:-4]) == struct.unpack(">I", chunk[-4:])[0]


def parse_index(data: bytes, where: str = "cyrus.index") -> MailboxIndex:
    if len(data) < _HEADER_FIELDS.size:
        raise SpoolFormatError(f"{where}: {len(data)} bytes, too short for an index header")
    _, _, minor, start, record_size, count = _HEADER_FIELDS.unpack_from(data)
    if minor not in INDEX_MINOR_VERSIONS:
        raise SpoolFormatError(
            f"{where}: index version {minor}; this reader knows "
            f"{', '.join(map(str, INDEX_MINOR_VERSIONS))} (Cyrus 3.6)"
        )
    if start != 160 or record_size != 112:
        raise SpoolFormatError(
            f"{where}: header size {start} / record size {record_size}, expected 160 / 112 for version 17"
        )
    if len(data) < start:
        raise SpoolFormatError(f"{where}: {len(data)} bytes, too short for a {start}-byte header")
    if not _crc_ok(data[:start]):
        raise SpoolFormatError(f"{where}: header CRC mismatch (torn read or damage)")
    if len(data) < start + count * record_size:
        raise SpoolFormatError(
            f"{where}: header promises {count} records, file holds {(len(data) - start) // record_size}"
        )
    (uidvalidity,) = struct.unpack_from(">I", data, 44)
    (last_uid,) = struct.unpack_from(">I", data, 28)
    (highestmodseq,) = struct.unpack_from(">Q", data, 68)
    records = []
    for n in range(count):
        offset = start + n * record_size
        chunk = data[offset : offset + record_size]
        if not _crc_ok(chunk):
            raise SpoolFormatError(f"{where}: record {n + 1} CRC mismatch (torn read or damage)")
        uid, internal_date, _, size = struct.unpack_from(">IIII", chunk, 0)
        (system_flags,) = struct.unpack_from(">I", chunk, 32)
        words = struct.unpack_from(">IIII", chunk, 36)
        user_flags = sum(w << (32 * i) for i, w in enumerate(words))
        (modseq,) = struct.unpack_from(">Q", chunk, 80)
        records.append(IndexRecord(uid, internal_date, size, system_flags, user_flags, modseq))
    return MailboxIndex(minor, uidvalidity, highestmodseq, last_uid, records)


# ---------------------------------------------------------------- imapd.conf


def read_imapd_conf(path: Path | str) -> dict[str, str]:
    """``key: value`` lines; '#' comments. Raises CyrusSpoolError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CyrusSpoolError(f"{path}: cannot read imapd.conf: {e.strerror or e}") from None
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------- the spool


class CyrusSpool:
    """The message and metadata directories of every partition in one imapd.conf."""

    READ_ATTEMPTS = 5

    def __init__(self, partitions: list[Path], meta_partitions: Sequence[Path] = ()):
        if not partitions:
            raise CyrusSpoolError("no partitions (partition-<name>: PATH) configured")
        self.partitions = [Path(p) for p in partitions]
        self.meta_partitions = [Path(p) for p in meta_partitions]

    @classmethod
    def from_imapd_conf(cls, path: Path | str) -> CyrusSpool:
        conf = read_imapd_conf(path)
        data = [Path(v) for k, v in sorted(conf.items()) if k.startswith("partition-") and v]
        meta = [Path(v) for k, v in sorted(conf.items()) if k.startswith("metapartition-") and v]
        if not data:
            raise CyrusSpoolError(f"{path}: no partition-<name> line")
        if conf.get("mailbox_legacy_dirs", "0").lower() in ("1", "yes", "true", "on"):
            raise CyrusSpoolError(f"{path}: mailbox_legacy_dirs is on; only the uuid layout is supported")
        if conf.get("unixhierarchysep", "yes").lower() in ("0", "no", "false", "off"):
            # folder names would not be the ones events and the archive use ('/')
            raise CyrusSpoolError(f"{path}: unixhierarchysep is off; vault needs 'unixhierarchysep: yes'")
        return cls(data, meta)

    @staticmethod
    def _relative(mailbox_id: str) -> Path:
        if not valid_mailbox_id(mailbox_id):
            raise MailboxNotFound(f"not a mailbox id: {mailbox_id!r}")
        return Path("uuid") / mailbox_id[0] / mailbox_id[1] / mailbox_id

    def _find(self, mailbox_id: str, roots: list[Path]) -> Path | None:
        rel = self._relative(mailbox_id)
        for root in roots:
            if (root / rel).is_dir():
                return root / rel
        return None

    def data_dir(self, mailbox_id: str) -> Path:
        found = self._find(mailbox_id, self.partitions)
        if found is None:
            raise MailboxNotFound(
                f"mailbox {mailbox_id}: no spool directory in {', '.join(map(str, self.partitions))}"
            )
        return found

    def meta_file(self, mailbox_id: str, name: str) -> Path:
        for root in (self._find(mailbox_id, self.meta_partitions), self.data_dir(mailbox_id)):
            if root is not None and (root / name).exists():
                return root / name
        raise MailboxNotFound(f"mailbox {mailbox_id}: no {name}")

    def message_path(self, mailbox_id: str, uid: int) -> Path:
        if not isinstance(uid, int) or isinstance(uid, bool) or not 0 < uid < 1 << 32:
            raise MessageGone(f"mailbox {mailbox_id}: not a UID: {uid!r}")
        return self.data_dir(mailbox_id) / f"{uid}."

    def read_message(self, mailbox_id: str, uid: int) -> tuple[bytes, str]:
        """(bytes exactly as Cyrus stored them, internal date from the file's mtime)."""
        path = self.message_path(mailbox_id, uid)
        try:
            with open(path, "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            raise MessageGone(f"{path}: spool file gone") from None
        except OSError as e:
            raise CyrusSpoolError(f"{path}: cannot read: {e.strerror or e}") from None
        return data, format_time(datetime.fromtimestamp(int(mtime), UTC))

    def header(self, mailbox_id: str) -> MailboxHeader:
        path = self.meta_file(mailbox_id, "cyrus.header")
        return parse_mailbox_header(_read(path), str(path))

    def index(self, mailbox_id: str) -> MailboxIndex:
        return read_index(self.meta_file(mailbox_id, "cyrus.index"), self.READ_ATTEMPTS)


def read_index(path: Path, attempts: int = 5, read: Callable[[Path], bytes] | None = None) -> MailboxIndex:
    """One cyrus.index file, read again while a CRC says it was caught mid-rewrite (``read``:
    how to read it, for the importer that never follows a link)."""
    for attempt in range(attempts):
        try:
            return parse_index((read or _read)(path), str(path))
        except SpoolFormatError as e:
            if "CRC" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))  # Cyrus is rewriting it: read again
    raise AssertionError("unreachable")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MailboxNotFound(f"{path}: gone") from None
    except OSError as e:
        raise CyrusSpoolError(f"{path}: cannot read: {e.strerror or e}") from None
