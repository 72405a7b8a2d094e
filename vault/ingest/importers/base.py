"""What every source format yields: messages with a stable key, flags and internal date."""

from __future__ import annotations

import abc
import functools
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vault.ingest.importers.tree import (  # SourceError: re-exported, readers and callers take it from here
    Found,
    NotRead,
    SourceError,  # noqa: F401
    SourceTree,
    what_is,
)
from vault.model import time_from_timestamp


@dataclass
class SourceMessage:
    key: str  # stable identity within the source across runs
    path: str  # file (mbox: FILE@offset), for messages
    flags: list[str]
    internal_date: datetime
    uid: int | None = None
    loader: Callable[[], bytes] | None = field(default=None, repr=False)
    rel: tuple[str, ...] | None = None  # a file's message: the file under the source (readahead.py)
    warning: str | None = None  # archived, but something about it is worth reporting

    def read(self) -> bytes:
        if self.loader is None:  # every source gives one (file_message, mbox)
            raise TypeError(f"{self.path}: a SourceMessage made without a loader cannot be read")
        return self.loader()


@dataclass
class SourceProblem:
    path: str
    reason: str
    key: str | None = None  # when known: the message is still there, only unreadable
    unreadable: bool = False  # reading it failed: the source holds something not archived


class Source(abc.ABC):
    kind: str
    mailbox_id: str | None = None
    uidvalidity: int | None = None

    def __init__(self, tree: SourceTree | Path):
        self.tree = tree if isinstance(tree, SourceTree) else SourceTree(tree)
        self.path = self.tree.root

    @abc.abstractmethod
    def scan(self) -> Iterator[SourceMessage | SourceProblem]: ...

    @abc.abstractmethod
    def count(self) -> int: ...


OUT_OF_RANGE = "its file time is out of range: the internal date is the time of the import"


def file_message(
    tree: SourceTree, found: Found, key: str, flags: list[str], uid: int | None = None
) -> SourceMessage | SourceProblem:
    """A message stored as one file, dated by its mtime; a problem if it is not a regular file
    (skipped: no key), cannot be stat'ed or is empty (the key is kept, so the message is not
    taken for deleted)."""
    where = tree.where(found.rel)
    if found.kind != "file":
        return SourceProblem(where, found.reason or f"{what_is(stat.S_IFDIR)}, not a message: skipped")
    try:
        st = found.stat or tree.stat(found.read_as)  # the listing's lstat; the read checks again
    except NotRead as e:
        return SourceProblem(where, e.strerror or "not read")
    except OSError as e:
        return SourceProblem(where, f"cannot read: {e.strerror or e}", key, unreadable=True)
    if st.st_size == 0:
        return SourceProblem(where, "empty file: not a message, skipped", key)
    when = time_from_timestamp(st.st_mtime)
    return SourceMessage(
        key,
        where,
        flags,
        when or datetime.now(UTC),
        uid=uid,
        loader=functools.partial(tree.read, found.read_as),
        warning=None if when else OUT_OF_RANGE,
        rel=found.read_as,
    )


def looks_like_mail(head: bytes) -> bool:
    """A header-like first line and no NUL bytes near the start."""
    if b"\x00" in head[:4096]:
        return False
    end = head.find(b"\n", 0, 4096)  # (split would copy the whole message)
    first = head[:end] if end >= 0 else head[:4096]
    name, colon, _ = first.partition(b":")
    return (bool(colon) and 0 < len(name) < 80 and b" " not in name.strip()) or first.startswith(b"From ")
