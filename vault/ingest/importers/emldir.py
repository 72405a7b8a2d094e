"""A directory of message files (.eml or any name): one message per file, recursively."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from vault.ingest.importers.base import Source, SourceMessage, SourceProblem, read_file


class EmlDirSource(Source):
    kind = "eml"

    def _files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*")
                      if not any(part.startswith(".") for part in p.relative_to(self.path).parts)
                      and (p.is_file() or p.is_symlink()) and p.name not in ("LICENSE",))

    def count(self) -> int:
        return len(self._files())

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        for p in self._files():
            key = str(p.relative_to(self.path))
            try:
                st = p.stat()
            except OSError as e:
                yield SourceProblem(str(p), f"cannot read: {e.strerror or e}", key)
                continue
            if st.st_size == 0:
                yield SourceProblem(str(p), "empty file: not a message, skipped", key)
                continue
            yield SourceMessage(key, str(p), [], datetime.fromtimestamp(st.st_mtime, timezone.utc),
                                loader=read_file(p))
