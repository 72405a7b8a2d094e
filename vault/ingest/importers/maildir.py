"""Maildir: cur/ and new/; flags from the ``:2,`` info suffix, internal date from mtime."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from vault.ingest.importers.base import (
    Source,
    SourceError,
    SourceMessage,
    SourceProblem,
    file_message,
)
from vault.mailformat import maildir_flags, maildir_key


class MaildirSource(Source):
    kind = "maildir"

    def __init__(self, path: Path):
        super().__init__(path)
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise SourceError(f"{path}: not a Maildir (no cur/ or new/)")

    def _files(self) -> list[Path]:
        files = []
        for sub in ("cur", "new"):
            d = self.path / sub
            if d.is_dir():
                files += [d / name for name in sorted(os.listdir(d)) if not name.startswith(".")]
        return files

    def count(self) -> int:
        return len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        for p in self._files():
            key = maildir_key(p.name)
            yield file_message(p, key, maildir_flags(p.name) if p.parent.name == "cur" else [])
