"""Maildir: cur/ and new/; flags from the ``:2,`` info suffix, internal date from mtime."""

from __future__ import annotations

from collections.abc import Iterator

from vault.ingest.importers.base import (
    Source,
    SourceError,
    SourceMessage,
    SourceProblem,
    SourceTree,
    file_message,
)
from vault.ingest.importers.tree import Found
from vault.mailformat import maildir_flags, maildir_key

SUBDIRS = ("cur", "new")


def is_maildir(tree: SourceTree) -> bool:
    """cur/ or new/ is there (a link in their place is reported by the scan, not followed)."""
    return any(f.name in SUBDIRS for f in tree.listdir())


def _subdirs(tree: SourceTree) -> list[Found]:
    return [f for f in tree.listdir() if f.name in SUBDIRS]


class MaildirSource(Source):
    kind = "maildir"

    def __init__(self, tree: SourceTree):
        super().__init__(tree)
        if not is_maildir(tree):
            raise SourceError(f"{tree.root}: not a Maildir (no cur/ or new/)")
        self._listed: tuple[list[Found], list[SourceProblem]] | None = None  # count's, for scan

    def _found(self) -> tuple[list[Found], list[SourceProblem]]:
        """The entries of cur/ and new/ (hidden names left out), and what could not be listed."""
        files: list[Found] = []
        problems: list[SourceProblem] = []
        for sub in _subdirs(self.tree):
            if sub.kind != "dir":
                problems.append(SourceProblem(str(self.tree.path(sub.rel)), sub.reason or "not a directory"))
                continue
            try:
                listing = self.tree.listdir(sub.read_as)
            except OSError as e:
                problems.append(
                    SourceProblem(
                        str(self.tree.path(sub.rel)), f"cannot read: {e.strerror or e}", unreadable=True
                    )
                )
                continue
            files += [
                Found((*sub.rel, f.name), f.kind, f.read_as, f.reason, f.stat)
                for f in listing
                if not f.name.startswith(".")
            ]
        return files, problems

    def count(self) -> int:
        """The files to read; the scan that follows reads this listing (one stat a file)."""
        self._listed = self._found()
        return sum(f.kind == "file" for f in self._listed[0])

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        files, problems = self._listed or self._found()
        self._listed = None
        yield from problems
        for f in files:
            flags = maildir_flags(f.name) if f.rel[0] == "cur" else []
            yield file_message(self.tree, f, maildir_key(f.name), flags)
