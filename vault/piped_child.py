"""A helper process of a writer: a fresh interpreter fed over two pipes (one home for it).

``python -I -S`` (no site-packages, no environment): the child runs ``function(read_fd,
write_fd)`` of ``module`` with only the standard library and the directories given on its path
(the vault package's own, and e.g. zstandard's), so it imports nothing the caller did not mean
it to. Used by the import's text worker (vault/index/textpool.py) and its read-ahead
(vault/ingest/importers/readahead.py); each speaks its own protocol over the pipes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from pathlib import Path

PIPE_BYTES = 1 << 20  # each way (Linux): what is written ahead waits here
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the directory that holds vault/


class PipedChild:
    """The parent's side: ``to_child`` (write) and ``from_child`` (read), both of PIPE_BYTES
    where the system allows; ``reap`` waits for the child once its input is closed."""

    def __init__(self, module: str, function: str, paths: tuple[Path, ...] = ()):
        child_in, self.to_child = os.pipe()
        self.from_child, child_out = os.pipe()
        roots = [str(PACKAGE_ROOT), *map(str, paths)]
        code = f"import sys; sys.path[:0] = {roots!r}; from {module} import {function}; {function}({child_in}, {child_out})"
        try:
            for fd in (self.to_child, self.from_child):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(self.to_child)
            os.close(self.from_child)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def reap(self) -> None:
        """Wait for the child to exit (its input closed, its output read to the end), killing
        it after 10 s."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
