"""Local-directory backend: the embedded default. Writes are atomic and never overwrite."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from vault.durable import write_file
from vault.store.backends.base import Backend, ObjectMissing, StoreError, StoreFull


def _fail(e: OSError, path: Path) -> StoreError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"{path}: {e.strerror}")  # what to do about it is the caller's (archive.py)
    return StoreError(f"{path}: {e.strerror or e}")


class LocalBackend(Backend):
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.name = f"local:{self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _fail(e, self.root) from None

    def on_the_disk_of(self, path: Path) -> bool:
        path = Path(path).absolute()
        while not path.exists() and path != path.parent:
            path = path.parent  # the ledger directory of a home being made
        try:
            return os.stat(self.root).st_dev == os.stat(path).st_dev
        except OSError:
            return False

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"bad object key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _fail(e, path) from None
        try:
            write_file(path, data, exclusive=True)  # an object is never replaced
        except FileExistsError:
            return False
        except OSError as e:
            raise _fail(e, path) from None
        return True

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(key, self.name) from None
        except OSError as e:
            raise _fail(e, path) from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise ObjectMissing(key, self.name) from None
        except OSError as e:
            raise _fail(e, path) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(key, self.name) from None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            raise ObjectMissing(key, self.name) from None

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return iter(())
        keys = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                if name.startswith("."):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), self.root)
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))
