"""A directory of message files (.eml or any name): one message per file, recursively."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vault.ingest.importers.base import (
    Source,
    SourceMessage,
    SourceProblem,
    file_message,
)


class EmlDirSource(Source):
    kind = "eml"

    def _files(self) -> list[Path]:
        return sorted(
            p
            for p in self.path.rglob("*")
            if not any(part.startswith(".") for part in p.relative_to(self.path).parts)
            and (p.is_file() or p.is_symlink())
            and p.name not in ("LICENSE",)
        )

    def count(self) -> int:
        return len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        for p in self._files():
            yield file_message(p, str(p.relative_to(self.path)), [])
