"""A directory of message files (.eml or any name): one message per file, recursively.

Hidden names (and their subtrees) and LICENSE files are left out; a directory reached twice
(through a followed link) is walked once."""

from __future__ import annotations

from collections.abc import Iterator

from vault.ingest.importers.base import (
    Source,
    SourceMessage,
    SourceProblem,
    file_message,
)
from vault.ingest.importers.tree import Found, Rel


class EmlDirSource(Source):
    kind = "eml"

    def _found(self) -> tuple[list[Found], list[SourceProblem]]:
        files: list[Found] = []
        problems: list[SourceProblem] = []
        walked: set[Rel] = set()
        links: list[tuple[Rel, Rel]] = []  # followed links to directories: walked after the tree

        def walk(rel: Rel, read_as: Rel) -> None:
            if read_as in walked:
                problems.append(SourceProblem(str(self.tree.path(rel)), "a directory read already: skipped"))
                return
            walked.add(read_as)
            try:
                listing = self.tree.listdir(read_as)
            except OSError as e:
                problems.append(
                    SourceProblem(
                        str(self.tree.path(rel)), f"cannot read: {e.strerror or e}", unreadable=True
                    )
                )
                return
            for f in listing:
                if f.name.startswith(".") or (f.name == "LICENSE" and f.kind != "dir"):
                    continue
                where = (*rel, f.name)
                if f.kind == "dir" and f.read_as != f.rel:
                    links.append((where, f.read_as))
                elif f.kind == "dir":
                    walk(where, f.read_as)
                else:
                    files.append(Found(where, f.kind, f.read_as, f.reason, f.stat))

        walk((), ())
        while links:  # the real tree first, so a message's key does not depend on link names
            walk(*links.pop(0))
        return sorted(files, key=lambda f: f.rel), problems

    def count(self) -> int:
        return sum(f.kind == "file" for f in self._found()[0])

    def scan(self) -> Iterator[SourceMessage | SourceProblem]:
        files, problems = self._found()
        yield from problems
        for f in files:
            yield file_message(self.tree, f, "/".join(f.rel), [])
