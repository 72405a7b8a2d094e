"""Reading a source without following what its owner planted in it (issue 14, item 6).

A source may belong to someone else: root imports ``/home/*/Maildir``, and any of those users can
put a symbolic link to ``/etc/shadow`` in their Maildir, a FIFO (a read that never ends) or a
device in it. None of those is a message. Inside a source only regular files and directories
are read; anything else is skipped and reported (``Found.reason``), never opened.

- Every file is opened from the source's root one component at a time (``openat`` with
  ``O_NOFOLLOW``), so a link swapped in after the scan, for a directory or a file, is refused
  as well; a FIFO or device swapped in is opened non-blocking and refused by its ``fstat``.
  The directories on the way are opened so once and kept open until ``close`` (the files of a
  Maildir are read from one descriptor of its ``cur/``): a directory renamed after it was
  opened is still the directory the scan saw, never what a link put in its place leads to.
- ``follow_symlinks``: a link whose target, fully resolved, lies inside the source tree is read
  as that target (a directory target is walked, once); a link leading outside it, or nowhere,
  is still skipped.
- The source path itself is the operator's: when it is a symbolic link (``/home/jane/Maildir``
  pointing at ``/root/Maildir``), it is refused unless ``follow_symlinks`` says to follow it.

Names are the file system's, undecodable bytes as surrogate escapes (vault/model.py).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class SourceError(Exception):
    """The whole source is unusable: missing, unreadable, not a mailbox (base.py re-exports it)."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FOLLOW_HINT = "--follow-symlinks follows links that stay inside the source"

Rel = tuple[str, ...]  # a path under the source's root, by component


def what_is(mode: int) -> str:
    """What a file that is not a regular file or a directory is, for a report."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


class NotRead(OSError):
    """A path inside the source that is not read, and why (its ``strerror``)."""

    def __init__(self, reason: str):
        super().__init__(errno.EPERM, reason)


@dataclass(frozen=True)
class Found:
    """One directory entry of a source: ``kind`` "file", "dir" or "skip" (then ``reason``).
    ``read_as`` is what is read for it: itself, or a followed link's target (under the root)."""

    rel: Rel
    kind: str
    read_as: Rel
    reason: str = ""
    stat: os.stat_result | None = None  # what lstat said of it (of its target, for a followed link)

    @property
    def name(self) -> str:
        return self.rel[-1]


class SourceTree:
    def __init__(self, root: Path | str, *, follow_symlinks: bool = False):
        root = Path(root)
        self.given = root
        self.follow = follow_symlinks
        try:
            st = os.lstat(root)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(root)
                if not follow_symlinks:
                    raise SourceError(
                        f"{root}: a symbolic link (to {target}): not followed; import the real "
                        "path, or give --follow-symlinks to follow it"
                    )
                root = Path(os.path.realpath(root))
                st = os.stat(root)
        except OSError as e:
            raise SourceError(f"{root}: cannot read: {e.strerror or e}") from None
        self.root = root
        self._root = str(root)
        self.real = os.path.realpath(root)
        self.is_dir = stat.S_ISDIR(st.st_mode)
        if not (self.is_dir or stat.S_ISREG(st.st_mode)):
            raise SourceError(f"{root}: {what_is(st.st_mode)}, not a mailbox")
        self._dirs: dict[Rel, int] = {}  # directories opened on the way to a file, kept (close)
        self._dirs_lock = threading.Lock()  # files are read on several threads (the importer's)

    def close(self) -> None:
        """Close the directories kept open for reading; a later read opens them again."""
        with self._dirs_lock:
            fds, self._dirs = list(self._dirs.values()), {}
        for fd in fds:
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_dirs", None):
            self.close()

    def path(self, rel: Rel) -> Path:
        """Where ``rel`` is, for people."""
        return self.root.joinpath(*rel)

    def where(self, rel: Rel) -> str:
        """``str(path(rel))``, without pathlib's cost (once per message)."""
        return os.path.join(self._root, *rel)

    # ------------------------------------------------------------ opening without following

    def _open_dir(self, parts: Rel) -> int:
        fd = os.open(self._root, _DIR_FLAGS)
        try:
            for part in parts:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _kept_dir(self, parts: Rel) -> int:
        """A directory of the source, opened as _open_dir does, once (kept until close)."""
        fd = self._dirs.get(parts)
        if fd is None:
            with self._dirs_lock:
                fd = self._dirs.get(parts)
                if fd is None:
                    fd = self._dirs[parts] = self._open_dir(parts)
        return fd

    def _open_fd(self, rel: Rel) -> tuple[int, os.stat_result]:
        """A descriptor of a regular file of the source and its fstat (NotRead otherwise)."""
        try:
            if not rel:
                fd = os.open(self._root, _FILE_FLAGS)
            else:
                parent = self._kept_dir(rel[:-1])
                mode = os.stat(rel[-1], dir_fd=parent, follow_symlinks=False).st_mode
                if not stat.S_ISREG(mode):  # a FIFO or device is never opened
                    raise NotRead(f"{what_is(mode)}, not a message: skipped")
                fd = os.open(rel[-1], _FILE_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):  # O_NOFOLLOW met a link
                raise NotRead(f"a symbolic link on the way: not followed ({FOLLOW_HINT})") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # swapped in after the check above
                raise NotRead(f"{what_is(st.st_mode)}, not a message: skipped")
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def open(self, rel: Rel = ()) -> BinaryIO:
        """A regular file of the source (``()``: the source itself, when it is a file), opened
        without following a link anywhere under the root; NotRead for anything else."""
        fd, _ = self._open_fd(rel)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read(self, rel: Rel = ()) -> bytes:
        """The bytes of a regular file of the source (as ``open``, in a few system calls: a
        regular file's reads do not heed O_NONBLOCK)."""
        fd, st = self._open_fd(rel)
        try:
            chunks = [os.read(fd, st.st_size + 1)]
            while chunks[-1]:  # until end of file (it may have grown since the fstat)
                chunks.append(os.read(fd, max(st.st_size, 1 << 16)))
        finally:
            os.close(fd)
        return b"".join(chunks) if len(chunks) > 2 else chunks[0]

    def stat(self, rel: Rel) -> os.stat_result:
        """The stat of a regular file of the source, not following links (NotRead otherwise)."""
        with self.open(rel) as f:
            return os.fstat(f.fileno())

    # ------------------------------------------------------------ listing

    def kind_of(self, rel: Rel) -> Found:
        """What ``rel`` is; a directory of the source is walked only if it is "dir"."""
        parent = self._open_dir(rel[:-1])
        try:
            st = os.stat(rel[-1], dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)
        return self._found(rel, st)

    def listdir(self, rel: Rel = ()) -> list[Found]:
        """The entries of a directory of the source, by name; a directory that cannot be
        opened (a link, gone) raises OSError (NotRead for a link)."""
        try:
            fd = self._open_dir(rel)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotRead(f"a symbolic link: not followed ({FOLLOW_HINT})") from None
            raise
        try:
            with os.scandir(fd) as it:
                stats = [(entry.name, entry.stat(follow_symlinks=False)) for entry in it]
        finally:
            os.close(fd)
        return [self._found((*rel, name), st) for name, st in sorted(stats, key=lambda pair: pair[0])]

    def _found(self, rel: Rel, st: os.stat_result) -> Found:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            return Found(rel, "file", rel, stat=st)
        if stat.S_ISDIR(mode):
            return Found(rel, "dir", rel, stat=st)
        if not stat.S_ISLNK(mode):
            return Found(rel, "skip", rel, f"{what_is(mode)}, not a message: skipped")
        link = os.path.join(self.root, *rel)
        try:
            shown = os.readlink(link)
        except OSError:
            shown = "?"
        if not self.follow:
            return Found(rel, "skip", rel, f"a symbolic link (to {shown}): not followed ({FOLLOW_HINT})")
        target = os.path.realpath(os.path.join(self.real, *rel))
        if os.path.commonpath([target, self.real]) != self.real or target == self.real:
            return Found(rel, "skip", rel, f"a symbolic link to {target}, outside the source: not followed")
        try:
            target_st = os.lstat(target)
        except OSError as e:
            return Found(rel, "skip", rel, f"a symbolic link to {shown}: {e.strerror or e}")
        target_mode = target_st.st_mode
        inside = tuple(Path(os.path.relpath(target, self.real)).parts)
        if stat.S_ISREG(target_mode):
            return Found(rel, "file", inside, stat=target_st)
        if stat.S_ISDIR(target_mode):
            return Found(rel, "dir", inside, stat=target_st)
        return Found(rel, "skip", rel, f"a symbolic link to {what_is(target_mode)}, not a message: skipped")
