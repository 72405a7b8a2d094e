"""Source readers for offline import: Maildir, mbox, a directory of .eml files, Cyrus folders.

Every reader reads through a SourceTree (tree.py): regular files and directories only, never
following a link unless ``follow_symlinks`` (and then only within the source)."""

from __future__ import annotations

import os
from pathlib import Path

from vault.ingest.importers.base import Source, SourceError
from vault.ingest.importers.tree import SourceTree

KINDS = ("maildir", "mbox", "eml", "cyrus")


def open_source(path: str | Path, kind: str | None = None, *, follow_symlinks: bool = False) -> Source:
    path = Path(path)
    if not os.path.lexists(path):
        raise SourceError(f"{path}: no such file or directory")
    tree = SourceTree(path, follow_symlinks=follow_symlinks)
    try:
        return _open(tree, kind or _detect(tree))
    except OSError as e:  # the directory cannot be listed (permissions, gone meanwhile)
        raise SourceError(f"{tree.root}: cannot read: {e.strerror or e}") from None


def _open(tree: SourceTree, kind: str) -> Source:
    path = tree.given
    if kind == "mbox":
        from vault.ingest.importers.mbox import MboxSource

        if tree.is_dir:
            raise SourceError(f"{path}: an mbox must be a file")
        return MboxSource(tree)
    if not tree.is_dir:
        raise SourceError(f"{path}: a {kind} source must be a directory")
    if kind == "maildir":
        from vault.ingest.importers.maildir import MaildirSource

        return MaildirSource(tree)
    if kind == "cyrus":
        from vault.ingest.importers.cyrus import CyrusSource

        return CyrusSource(tree)
    if kind == "eml":
        from vault.ingest.importers.emldir import EmlDirSource

        return EmlDirSource(tree)
    raise SourceError(f"unknown source format {kind!r} (one of {', '.join(KINDS)})")


def _detect(tree: SourceTree) -> str:
    if not tree.is_dir:
        return "mbox"
    from vault.ingest.importers.maildir import is_maildir

    if is_maildir(tree):
        return "maildir"
    from vault.ingest.importers.cyrus import is_cyrus_folder

    return "cyrus" if is_cyrus_folder(tree) else "eml"
