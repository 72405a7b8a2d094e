"""Files a crash leaves whole: the old version or the new one, never a torn or half-named file.

One home for the write-to-a-temporary, fsync, rename, fsync-the-directory sequence the
keys, the API users, the witness's state and the purge intent rely on. Imports nothing of
the vault, so the mail host's units and the witness service may use it too.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_path(path: Path | str) -> None:
    """Make ``path`` durable: a file's bytes, or a directory's entries (after a create,
    rename or unlink in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(
    path: Path | str,
    data: bytes,
    *,
    mode: int = 0o600,
    exclusive: bool = False,
    temporary: Path | None = None,
) -> None:
    """``data`` in ``path``, with ``mode`` from its first byte whatever the umask, durable
    when this returns. It replaces an existing file atomically; with ``exclusive`` it never
    does (FileExistsError, the file left as it was). The temporary beside it (``temporary``
    when a recovery sweeps temporaries by name; else a hidden per-process name) is removed
    whatever happens, unless the process dies first."""
    path = Path(path)
    tmp = temporary or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # unlike a rename, a link never replaces what is there
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_path(path.parent)
