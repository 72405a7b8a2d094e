"""The search index as one complete generation, swapped in whole.

``<home>/index/current`` names the live generation, a directory beside it (``index/g<N>``).
A rebuild builds generation N+1 aside while the old one still answers; only once the new one
is complete and on disk does ``swap`` replace ``current`` (a rename: atomic), then delete the
old one. So a rebuild killed at any point leaves the old index or the new one, never a
half-built one answering 0 hits. A generation ``current`` does not name is a rebuild that
died: the next swap, or the vault's writer when it opens the index, deletes it (``sweep``).

An index made before generations (Tantivy's files in ``index/`` itself, no ``current``) is
read as it is, and its first rebuild replaces it the same way.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from vault.durable import sync_path, write_file

POINTER = "current"
_GENERATION = re.compile(r"^g(\d+)$")


def _generations(path: Path) -> dict[int, Path]:
    found = {}
    for child in path.iterdir() if path.is_dir() else ():
        m = _GENERATION.match(child.name)
        if m and child.is_dir():
            found[int(m.group(1))] = child
    return found


def live(path: Path) -> Path | None:
    """The directory holding the live index at ``path``: the generation ``current`` names
    (which may be missing: a damaged index), ``path`` itself for an index from before
    generations, or None when there is no index at all."""
    pointer = path / POINTER
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return path if (path / "meta.json").exists() else None
    if not _GENERATION.match(name):
        return path / "(unreadable current)"  # opening it fails: a damaged index
    return path / name


def new_generation(path: Path) -> Path:
    """A new, empty generation directory under ``path``, not yet live."""
    path.mkdir(parents=True, exist_ok=True)
    gen = path / f"g{max(_generations(path), default=0) + 1}"
    gen.mkdir()
    return gen


def swap(path: Path, gen: Path) -> None:
    """Make ``gen`` (complete, its writer closed) the live index, atomically; then delete
    every other generation and anything of an index from before generations."""
    for child in gen.iterdir():  # the generation is durable before it goes live
        if child.is_file():
            sync_path(child)
    sync_path(gen)
    write_file(path / POINTER, (gen.name + "\n").encode())
    sweep(path)


def sweep(path: Path) -> None:
    """Delete what is not the live generation (old ones, rebuilds that died). Only with a
    ``current``: without one, ``path``'s own files are the live (pre-generation) index."""
    if not (path / POINTER).exists():
        return
    current = live(path)
    for child in path.iterdir():
        if child.name == POINTER or child == current:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def create(path: Path) -> Path:
    """A first, empty generation, live at ``path``."""
    gen = new_generation(path)
    swap(path, gen)
    return gen
