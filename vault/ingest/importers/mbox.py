"""mbox (mboxrd/mboxo): messages between strict From_ lines; streamed, read by offset.

A line splits messages only if it is a real From_ line (sender and an asctime date), so an
unquoted "From " in a body does not cut a message in two. Message bytes are the lines
between separators, minus the blank separator line, with one level of >From quoting
removed (mboxrd). A file that ends without a newline is reported as probably truncated;
its last message is kept as it is.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from vault.ingest.importers.base import (
    Source,
    SourceError,
    SourceMessage,
    SourceProblem,
    SourceTree,
)
from vault.mailformat import mbox_flags, mboxrd_unquote, parse_from_line
from vault.model import time_from_timestamp

_HEADER_END = (b"\n\n", b"\r\n\r\n")


def split_mbox(f) -> Iterator[tuple[int, int, datetime | None]]:
    """(body start, body end, From_ date) per message, from a binary file object."""
    start = when = None
    pos = 0
    for line in f:
        if line.startswith(b"From ") and (date := parse_from_line(line)) is not None:
            if start is not None:
                yield start, pos, when
            start, when = pos + len(line), date
        elif start is None and line.strip():
            raise SourceError(f"not an mbox (line {line[:60]!r} comes before any From_ line)")
        pos += len(line)
    if start is not None:
        yield start, pos, when


class MboxSource(Source):
    kind = "mbox"

    def __init__(self, tree: SourceTree | Path):
        super().__init__(tree)
        path = self.path
        if self.tree.is_dir:
            raise SourceError(f"{path}: an mbox must be a file")
        try:
            with self.tree.open() as f:
                first = f.readline()
        except OSError as e:
            raise SourceError(f"{path}: cannot read: {e.strerror or e}") from None
        if not first:
            raise SourceError(f"{path}: empty file, not an mbox")
        if parse_from_line(first) is None:
            raise SourceError(f"{path}: not an mbox (first line {first[:60]!r} is not a From_ line)")

    def count(self) -> int:
        n = 0
        with self.tree.open() as f:
            for line in f:
                if line.startswith(b"From ") and parse_from_line(line):
                    n += 1
        return n

    def _body(self, start: int, end: int) -> bytes:
        with self.tree.open() as f:
            f.seek(start)
            raw = f.read(end - start)
        # the blank line before the next From_ line belongs to the mbox, not the message
        if raw.endswith(b"\r\n\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n\n"):
            raw = raw[:-1]
        return mboxrd_unquote(raw)

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        seen: dict[str, int] = {}
        try:
            with self.tree.open() as f:
                mtime = time_from_timestamp(os.fstat(f.fileno()).st_mtime) or datetime.now(UTC)
                spans = list(split_mbox(f))
        except SourceError as e:
            yield SourceProblem(str(self.path), str(e))
            return
        for n, (start, end, when) in enumerate(spans):
            data = self._body(start, end)
            digest = hashlib.sha256(data).hexdigest()
            seen[digest] = seen.get(digest, 0) + 1
            head = data
            for marker in _HEADER_END:
                cut = data.find(marker)
                if cut >= 0:
                    head = data[:cut]
                    break
            last = n == len(spans) - 1
            if last and not data.endswith(b"\n"):
                yield SourceProblem(
                    f"{self.path}@{start}",
                    "file ends in the middle of a line: the mbox looks truncated; the last message was kept as it is",
                )
            yield SourceMessage(
                f"{digest}#{seen[digest]}",
                f"{self.path}@{start}",
                mbox_flags(head),
                when or mtime,
                loader=functools.partial(self._body, start, end),
            )
