"""Source readers for offline import: Maildir, mbox, a directory of .eml files, Cyrus folders."""

from __future__ import annotations

from pathlib import Path

from vault.ingest.importers.base import Source, SourceError

KINDS = ("maildir", "mbox", "eml", "cyrus")


def open_source(path: str | Path, kind: str | None = None) -> Source:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise SourceError(f"{path}: no such file or directory")
    if kind is None:
        kind = _detect(path)
    if kind == "mbox":
        from vault.ingest.importers.mbox import MboxSource

        if not path.is_file():
            raise SourceError(f"{path}: an mbox must be a file")
        return MboxSource(path)
    if not path.is_dir():
        raise SourceError(f"{path}: a {kind} source must be a directory")
    if kind == "maildir":
        from vault.ingest.importers.maildir import MaildirSource

        return MaildirSource(path)
    if kind == "cyrus":
        from vault.ingest.importers.cyrus import CyrusSource

        return CyrusSource(path)
    if kind == "eml":
        from vault.ingest.importers.emldir import EmlDirSource

        return EmlDirSource(path)
    raise SourceError(f"unknown source format {kind!r} (one of {', '.join(KINDS)})")


def _detect(path: Path) -> str:
    if path.is_file():
        return "mbox"
    if not path.is_dir():
        raise SourceError(f"{path}: neither a file nor a directory")
    try:
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        from vault.ingest.importers.cyrus import is_cyrus_folder

        return "cyrus" if is_cyrus_folder(path) else "eml"
    except OSError as e:
        raise SourceError(f"{path}: cannot read: {e.strerror or e}") from None
