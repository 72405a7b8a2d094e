"""The home's SQLite files, opened to write or, where the home cannot be written, to read only.

A home on a read-only file system (a snapshot, a read-only bind mount for an investigation, a
disk the kernel remounted read-only) must still be readable without writing a byte: SQLite's
``mode=ro`` opens a WAL database whose ``-wal`` and ``-shm`` files exist (and reads what the
``-wal`` holds); with no ``-wal`` file there is nothing it could hold, and ``immutable=1`` lets
SQLite read the file without creating a ``-shm`` it could not create.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote


def writable(path: Path | str) -> bool:
    """Whether this process may create files in directory ``path`` (False on a read-only file
    system, whoever asks, root included)."""
    return os.access(path, os.W_OK)


def connect(path: Path | str, *, read_only: bool = False, **kwargs) -> sqlite3.Connection:
    """``sqlite3.connect``, or with ``read_only`` a connection that never writes (the file must
    exist: sqlite3.OperationalError otherwise)."""
    if not read_only:
        return sqlite3.connect(str(path), **kwargs)
    path = Path(path).absolute()
    wal = path.with_name(path.name + "-wal")
    immutable = not wal.exists() and not writable(path.parent)
    uri = f"file:{quote(os.fsencode(path))}?mode=ro{'&immutable=1' if immutable else ''}"
    return sqlite3.connect(uri, uri=True, **kwargs)
