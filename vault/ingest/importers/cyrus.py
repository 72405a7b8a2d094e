"""A Cyrus 3.x mailbox directory: ``<UID>.`` files beside cyrus.header / cyrus.index.

The UID comes from the file name, the internal date from the file's mtime (Cyrus sets it
to the internal date), the mailboxID from cyrus.header. Flags would need cyrus.index,
which this reader does not parse yet: imported messages carry no flags.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from vault.ingest.importers.base import (
    Source,
    SourceError,
    SourceMessage,
    SourceProblem,
    file_message,
)

HEADER_MAGIC = b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
_UID_FILE = re.compile(r"^([1-9][0-9]*)\.$")


def parse_cyrus_header(data: bytes) -> str | None:
    """The mailbox uniqueid from cyrus.header, or None when the file is not one."""
    if not data.startswith(HEADER_MAGIC):
        return None
    lines = data[len(HEADER_MAGIC):].split(b"\n")
    # two quote lines, then "quotaroot\tuniqueid"
    if len(lines) < 3:
        return None
    fields = lines[2].split(b"\t")
    if len(fields) < 2:
        return None
    uid = fields[1].strip().decode("ascii", "replace")
    return uid if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", uid) else None


def is_cyrus_folder(path: Path) -> bool:
    if (path / "cyrus.header").exists():
        return True
    return any(_UID_FILE.match(p.name) for p in path.iterdir())


class CyrusSource(Source):
    kind = "cyrus"

    def __init__(self, path: Path):
        super().__init__(path)
        header = path / "cyrus.header"
        if header.exists():
            try:
                self.mailbox_id = parse_cyrus_header(header.read_bytes())
            except OSError as e:
                raise SourceError(f"{header}: cannot read: {e.strerror or e}") from None

    def _files(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.path.iterdir():
            m = _UID_FILE.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def count(self) -> int:
        return len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        for uid, p in self._files():
            yield file_message(p, str(uid), [], uid=uid)
