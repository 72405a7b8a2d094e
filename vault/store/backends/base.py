"""The blob-store backend contract: immutable objects under string keys (docs/architecture.md 4.1)."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path


class StoreError(Exception):
    pass


class ObjectMissing(StoreError):
    def __init__(self, key: str, where: str = ""):
        super().__init__(f"object {key!r} missing{' from ' + where if where else ''}")
        self.key = key


class BackendUnavailable(StoreError):
    pass


class StoreFull(StoreError):
    pass


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> bool:
        """Store atomically, never overwriting: True if written, False if the key existed."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Only the retention engine deletes."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under prefix, sorted."""

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """Put or lift a storage-level legal hold; False where the backend has none."""
        return False

    def on_the_disk_of(self, path: Path) -> bool:
        """Whether what is stored here lives on the file system that holds ``path``: a copy
        kept here of a file there is no second copy (the ledger's sealed segments are not
        copied then: archive._sealer). False for any backend off this host."""
        return False
