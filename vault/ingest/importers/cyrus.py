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
    SourceTree,
    file_message,
)
from vault.ingest.importers.tree import Found
from vault.model import time_from_timestamp

_UID_FILE = re.compile(r"^([1-9][0-9]*)\.$")
OUT_OF_RANGE_INDEX = "its internal date in cyrus.index is out of range: dated by its file instead"
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


def is_cyrus_folder(tree: SourceTree) -> bool:
    return any(f.name == "cyrus.header" or _UID_FILE.match(f.name) for f in tree.listdir())


class CyrusSource(Source):
    kind = "cyrus"

    def __init__(self, tree: SourceTree):
        super().__init__(tree)
        self.user_flags: tuple[str, ...] = ()
        self.problems: list[SourceProblem] = []  # about the folder as a whole, reported by scan()
        self._read_header()
        self.index: MailboxIndex | None = self._read_index()
        if self.index is not None:
            self.uidvalidity = self.index.uidvalidity
            self._check_user_flag_names(self.index)

    def _meta(self, name: str) -> Found | None:
        """cyrus.header or cyrus.index, if present (a link or FIFO in its place: reported, not read)."""
        found = next((f for f in self.tree.listdir() if f.name == name), None)
        if found is not None and found.kind != "file":
            self.problems.append(SourceProblem(str(self.tree.path(found.rel)), found.reason or "a directory"))
            return None
        return found

    def _read_header(self) -> None:
        header = self.path / "cyrus.header"
        found = self._meta("cyrus.header")
        if found is None:
            return
        try:
            data = self.tree.read(found.read_as)
        except OSError as e:
            raise SourceError(f"{header}: cannot read: {e.strerror or e}") from None
        self.mailbox_id, self.user_flags, problem = parse_cyrus_header(data, str(header))
        if problem:
            self.problems.append(SourceProblem(str(header), problem))

    def _read_index(self) -> MailboxIndex | None:
        path = self.path / "cyrus.index"
        known = len(self.problems)
        found = self._meta("cyrus.index")
        if found is None:
            gone = "missing" if len(self.problems) == known else "not read"
            self.problems.append(SourceProblem(str(path), f"{gone}: {FALLBACK}"))
            return None
        try:
            return read_index(path, read=lambda _: self.tree.read(found.read_as))
        except OSError as e:
            self.problems.append(SourceProblem(str(path), f"cannot read: {e.strerror or e}: {FALLBACK}"))
            return None
        except CyrusSpoolError as e:
            self.problems.append(SourceProblem(str(path), f"{_without_path(e, path)}: {FALLBACK}"))
            return None

    def _check_user_flag_names(self, index: MailboxIndex) -> None:
        unnamed = sum(1 for r in index.present if r.user_flags >> len(self.user_flags))
        if unnamed:
            self.problems.append(
                SourceProblem(
                    str(self.path / "cyrus.header"),
                    f"{unnamed} message(s) carry user flags cyrus.header does not name: those flags are left out",
                )
            )

    def _files(self) -> list[tuple[int, Found]]:
        out = []
        for f in self.tree.listdir():
            m = _UID_FILE.match(f.name)
            if m:
                out.append((int(m.group(1)), f))
        return sorted(out, key=lambda pair: pair[0])

    def count(self) -> int:
        return len(self.index.present) if self.index is not None else len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        yield from self.problems
        if self.index is None:
            for uid, file in self._files():
                yield file_message(self.tree, file, str(uid), [], uid=uid)
            return
        files = dict(self._files())
        for record in sorted(self.index.present, key=lambda r: r.uid):
            f = files.pop(record.uid, None)
            if f is None:
                yield SourceProblem(
                    str(self.path / f"{record.uid}."),
                    "listed in cyrus.index, but the file is missing",
                    str(record.uid),
                )
                continue
            found = file_message(self.tree, f, str(record.uid), record.flags(self.user_flags), uid=record.uid)
            if isinstance(found, SourceMessage):
                when = time_from_timestamp(record.internal_date)
                found.internal_date, found.warning = (
                    (when, None) if when else (found.internal_date, OUT_OF_RANGE_INDEX)
                )
            yield found
        expunged = {r.uid for r in self.index.records if r.expunged}
        for uid, f in files.items():
            if uid not in expunged:  # expunged files wait on disk for Cyrus's delayed expunge
                yield SourceProblem(
                    str(self.tree.path(f.rel)),
                    "not in cyrus.index (still being delivered, or the index "
                    "is stale): left for the next run",
                    str(uid),
                )
