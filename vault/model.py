"""Identifiers, times and flags shared by every part of vault (docs/architecture.md, "Identifiers").

Ledger entry kinds live in vault/entries.py."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

# ---------------------------------------------------------------- identifiers

BLOB_PREFIX = "sha256:"
_BLOB_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def blob_id(data: bytes) -> str:
    """The content address of exactly these bytes."""
    return BLOB_PREFIX + hashlib.sha256(data).hexdigest()


def is_blob_id(value: str) -> bool:
    return bool(_BLOB_RE.match(value))


def blob_hex(bid: str) -> str:
    if not is_blob_id(bid):
        raise ValueError(f"not a blob id: {bid!r}")
    return bid[len(BLOB_PREFIX) :]


@dataclass(frozen=True, order=True)
class ItemId:
    """One message in one folder: (mailboxID, UIDVALIDITY, UID)."""

    mailbox_id: str
    uidvalidity: int
    uid: int

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.uidvalidity}:{self.uid}"

    @classmethod
    def parse(cls, text: str) -> ItemId:
        try:
            mailbox_id, uidvalidity, uid = text.rsplit(":", 2)
            return cls(mailbox_id, int(uidvalidity), int(uid))
        except ValueError:
            raise ValueError(f"not an item id (MAILBOXID:UIDVALIDITY:UID): {text!r}") from None


# ---------------------------------------------------------------- time


def now() -> datetime:
    return datetime.now(UTC)


def format_time(when: datetime) -> str:
    """Ledger/catalog time: UTC, microseconds, fixed width, so strings sort as times."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    u = when.astimezone(UTC)
    # strftime's %Y does not zero-pad years before 1000, which would break the sort order
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def parse_time(text: str) -> datetime:
    """ISO 8601 with a zone (``Z`` or ``+hh:mm``), or ``now``."""
    text = text.strip()
    if text.lower() == "now":
        return now()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (example: 2026-11-01T12:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone: add Z or +hh:mm")
    try:
        when.astimezone(UTC)  # what every stored time is (format_time)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise ValueError(f"time {text!r} is out of range (years 0001 to 9999, in UTC)") from None
    return when


def time_from_timestamp(seconds: float) -> datetime | None:
    """A file's mtime (or a Cyrus index's internal date) as a UTC time; None when it is outside
    what a time can hold (a hostile or broken source file dated in the year 300,000)."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


# ---------------------------------------------------------------- names from the file system
#
# A file or folder name that is not UTF-8 is kept as its bytes: Python decodes it with
# surrogateescape (os.listdir, argv), every undecodable byte 0xNN becoming U+DCNN, and vault
# carries that string as it is. Where it is written as JSON (the ledger's canonical form, manifests,
# --json output) each such character is the JSON escape \udcNN, so the text stays UTF-8 and
# json.loads gives the same string back; os.fsencode(name) is the original bytes again.


def json_bytes(text: str) -> bytes:
    """The JSON text ``json.dumps(..., ensure_ascii=False)`` made, in UTF-8, with the lone
    surrogates of non-UTF-8 names as ``\\udcNN`` escapes (reversible: json.loads reads them back)."""
    return text.encode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    """Whether a name is text (False: it holds bytes that are not UTF-8, as surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------- flags

SYSTEM_FLAGS = ("\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen")


_CANON_FLAGS = {f.lower(): f for f in SYSTEM_FLAGS}


def normalise_flags(flags) -> list[str]:
    """A sorted, de-duplicated flag list; system flags in their canonical case."""
    out = set()
    for flag in flags:
        if not flag:
            continue
        out.add(_CANON_FLAGS.get(flag.lower(), flag) if flag.startswith("\\") else flag)
    out.discard("\\Recent")
    return sorted(out)


@dataclass(frozen=True)
class Problem:
    """One thing verify (or an import, or a sweep) found wrong: where, and what."""

    where: str  # e.g. "ledger entry 42", "blob sha256:...", "/path/to/file"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class Refused(Exception):
    """An operation vault refuses for a reason the operator must read (a rolled-back ledger,
    say): vaultctl prints it as one error line, no traceback, and exits non-zero."""


def cyrus_folder_name(name: str) -> str:
    """Cyrus's own name for a folder given the way a mail client shows it: a user's INBOX is
    ``user/jane`` (``user/jane/INBOX`` -> ``user/jane``, ``user/jane/INBOX/Sent`` ->
    ``user/jane/Sent``); any other name is returned as it is."""
    parts = name.split("/")
    if len(parts) >= 3 and parts[0] == "user" and parts[1] and parts[2] == "INBOX":
        return "/".join(parts[:2] + parts[3:])
    return name


def folder_forms(folder: str) -> tuple[str, ...]:
    """A folder's name, and for a user's INBOX (Cyrus's ``user/jane``) also the name a mail
    client shows (``user/jane/INBOX``): what folder patterns and ``in:`` match against."""
    parts = folder.split("/")
    if len(parts) == 2 and parts[0] == "user" and parts[1]:
        return (folder, folder + "/INBOX")
    return (folder,)


def custodian_of(folder: str | None) -> str | None:
    """The user a folder belongs to: ``user/jane/Sent`` (or ``user.jane.Sent``) -> ``jane``."""
    if not folder:
        return None
    parts = folder.replace(".", "/").split("/") if folder.startswith("user.") else folder.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "user" and parts[1] else None
