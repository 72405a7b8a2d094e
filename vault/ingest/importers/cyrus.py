"""A Cyrus 3.x mailbox directory: ``<UID>.`` files beside cyrus.header / cyrus.index.

cyrus.index (version 17, Cyrus 3.6) gives the mailbox's UIDVALIDITY and, per message, its
UID, flags (system flags and user flags, named in cyrus.header) and internal date; only the
messages it lists as present are imported, so files Cyrus keeps for a while after an expunge
(delayed expunge) are left out. Without a readable index the reader falls back to the files
alone, and says so: UIDs from the file names, internal dates from the files' mtimes (Cyrus
sets them to the internal date), no flags, and the importer makes up a UIDVALIDITY.
The mailboxID comes from cyrus.header (the dlist of 3.x, or the tab-separated line of 2.x).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from vault.ingest.cyrus.spool import (
    HEADER_MAGIC,  # noqa: F401 (re-exported: the importer's tests build headers with it)
    CyrusSpoolError,
    MailboxIndex,
    SpoolFormatError,
    parse_legacy_header,
    parse_mailbox_header,
    read_index,
    valid_mailbox_id,
)
from vault.ingest.importers.base import (
    Source,
    SourceError,
    SourceMessage,
    SourceProblem,
    file_message,
)

_UID_FILE = re.compile(r"^([1-9][0-9]*)\.$")
FALLBACK = "UIDs from file names, internal dates from file times, no flags, a made-up UIDVALIDITY"


def _without_path(error: Exception, path: Path | str) -> str:
    # spool errors name their file; a SourceProblem names it already
    return str(error).removeprefix(f"{path}: ")


def parse_cyrus_header(data: bytes, where: str = "cyrus.header") -> tuple[str | None, tuple[str, ...], str]:
    """What the importer takes from a cyrus.header, whichever Cyrus wrote it (spool.py reads
    both formats): (mailboxID or None, user flag names, "" or why there is no mailboxID)."""
    try:
        parsed = parse_mailbox_header(data, where)
    except SpoolFormatError as e:
        mailbox_id = parse_legacy_header(data)
        if mailbox_id is not None:
            return mailbox_id, (), ""
        return None, (), f"{_without_path(e, where)}: no mailboxID, the archive makes one up"
    return (parsed.uniqueid if valid_mailbox_id(parsed.uniqueid) else None), parsed.user_flags, ""


def is_cyrus_folder(path: Path) -> bool:
    if (path / "cyrus.header").exists():
        return True
    return any(_UID_FILE.match(p.name) for p in path.iterdir())


class CyrusSource(Source):
    kind = "cyrus"

    def __init__(self, path: Path):
        super().__init__(path)
        self.user_flags: tuple[str, ...] = ()
        self.problems: list[SourceProblem] = []  # about the folder as a whole, reported by scan()
        self._read_header()
        self.index: MailboxIndex | None = self._read_index()
        if self.index is not None:
            self.uidvalidity = self.index.uidvalidity
            self._check_user_flag_names()

    def _read_header(self) -> None:
        header = self.path / "cyrus.header"
        if not header.exists():
            return
        try:
            data = header.read_bytes()
        except OSError as e:
            raise SourceError(f"{header}: cannot read: {e.strerror or e}") from None
        self.mailbox_id, self.user_flags, problem = parse_cyrus_header(data, str(header))
        if problem:
            self.problems.append(SourceProblem(str(header), problem))

    def _read_index(self) -> MailboxIndex | None:
        path = self.path / "cyrus.index"
        if not path.exists():
            self.problems.append(SourceProblem(str(path), f"missing: {FALLBACK}"))
            return None
        try:
            return read_index(path)
        except CyrusSpoolError as e:
            self.problems.append(SourceProblem(str(path), f"{_without_path(e, path)}: {FALLBACK}"))
            return None

    def _check_user_flag_names(self) -> None:
        unnamed = sum(1 for r in self.index.present if r.user_flags >> len(self.user_flags))
        if unnamed:
            self.problems.append(
                SourceProblem(
                    str(self.path / "cyrus.header"),
                    f"{unnamed} message(s) carry user flags cyrus.header does not name: those flags are left out",
                )
            )

    def _files(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.path.iterdir():
            m = _UID_FILE.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def count(self) -> int:
        return len(self.index.present) if self.index is not None else len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        yield from self.problems
        if self.index is None:
            for uid, p in self._files():
                yield file_message(p, str(uid), [], uid=uid)
            return
        files = dict(self._files())
        for record in sorted(self.index.present, key=lambda r: r.uid):
            p = files.pop(record.uid, None)
            if p is None:
                yield SourceProblem(
                    str(self.path / f"{record.uid}."),
                    "listed in cyrus.index, but the file is missing",
                    str(record.uid),
                )
                continue
            found = file_message(p, str(record.uid), record.flags(self.user_flags), uid=record.uid)
            if isinstance(found, SourceMessage):
                found.internal_date = datetime.fromtimestamp(record.internal_date, UTC)
            yield found
        expunged = {r.uid for r in self.index.records if r.expunged}
        for uid, p in files.items():
            if uid not in expunged:  # expunged files wait on disk for Cyrus's delayed expunge
                yield SourceProblem(
                    str(p),
                    "not in cyrus.index (still being delivered, or the index "
                    "is stale): left for the next run",
                    str(uid),
                )
