"""What every source format yields: messages with a stable key, flags and internal date."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


class SourceError(Exception):
    """The whole source is unusable: missing, unreadable, not a mailbox."""


@dataclass
class SourceMessage:
    key: str  # stable identity within the source across runs
    path: str  # file (mbox: FILE@offset), for messages
    flags: list[str]
    internal_date: datetime
    uid: int | None = None
    loader: Callable[[], bytes] | None = field(default=None, repr=False)

    def read(self) -> bytes:
        if self.loader is None:  # every source gives one (file_message, mbox)
            raise TypeError(f"{self.path}: a SourceMessage made without a loader cannot be read")
        return self.loader()


@dataclass
class SourceProblem:
    path: str
    reason: str
    key: str | None = None  # when known: the message is still there, only unreadable


class Source(abc.ABC):
    kind: str
    mailbox_id: str | None = None
    uidvalidity: int | None = None

    def __init__(self, path: Path):
        self.path = path

    @abc.abstractmethod
    def scan(self) -> Iterator[SourceMessage | SourceProblem]: ...

    @abc.abstractmethod
    def count(self) -> int: ...


def read_file(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()


def file_message(
    path: Path, key: str, flags: list[str], uid: int | None = None
) -> SourceMessage | SourceProblem:
    """A message stored as one file, dated by its mtime; a problem if it cannot be
    stat'ed or is empty (the key is kept, so the message is not taken for deleted)."""
    try:
        st = path.stat()
    except OSError as e:
        return SourceProblem(str(path), f"cannot read: {e.strerror or e}", key)
    if st.st_size == 0:
        return SourceProblem(str(path), "empty file: not a message, skipped", key)
    return SourceMessage(
        key, str(path), flags, datetime.fromtimestamp(st.st_mtime, UTC), uid=uid, loader=read_file(path)
    )


def looks_like_mail(head: bytes) -> bool:
    """A header-like first line and no NUL bytes near the start."""
    if b"\x00" in head[:4096]:
        return False
    first = head.split(b"\n", 1)[0]
    name, colon, _ = first.partition(b":")
    return (bool(colon) and 0 < len(name) < 80 and b" " not in name.strip()) or first.startswith(b"From ")
