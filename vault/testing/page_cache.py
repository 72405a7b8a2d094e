"""The page cache a benchmark's source tree starts each timed run in, the same for every
contender.

``borg create`` drops each file it read from the page cache (its chunker calls
``posix_fadvise(POSIX_FADV_DONTNEED)``), so whatever runs after it reads the tree from the disk:
on the development VM borg after borg took 2.4-2.8 s against 1.05-1.17 after vault, and vault
after borg 2.3-2.5 s against 1.7-1.8 after vault. A paired benchmark that does not settle the
cache measures its run order. ``warm`` reads every file first; ``cold`` drops the whole
cache (root only), as on a backup's first run over data nobody read lately.
"""

from __future__ import annotations

import os
from pathlib import Path

MODES = ("warm", "cold")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def warm(tree: Path) -> tuple[int, int]:
    """Read every regular file under ``tree`` (links not followed); (files, bytes) read."""
    files = size = 0
    for root, _, names in os.walk(tree):
        for name in names:
            path = os.path.join(root, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
            files += 1
    return files, size


def cold() -> None:
    """Write back what is dirty, then drop the page cache, dentries and inodes (root only)."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except PermissionError:
        raise SystemExit(f"--cache cold needs root: it writes {DROP_CACHES}") from None


def settle(tree: Path, mode: str) -> None:
    """Put the page cache in ``mode`` (one of MODES) for a run over ``tree``."""
    if mode == "warm":
        warm(tree)
    elif mode == "cold":
        cold()
    else:
        raise ValueError(f"cache mode {mode!r}: one of {', '.join(MODES)}")
