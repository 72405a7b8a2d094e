"""The tar stream the vault service sends a caller for a restore or an export, and its reader.

The service never writes into a path its caller chose (it runs as the vault's user): it
streams what a restore or an export would write, and the caller's own ``vaultctl`` writes it
where the caller asked, with the caller's permissions. The stream is a POSIX (pax) tar, read
as it arrives (``tarfile`` ``r|``):

- first member ``.vault-stream.json``: what the stream holds (``kind`` "restore" or
  "export", ``members``: how many members follow, and the kind's summary);
- a restore: one member per message, ``messages/NNNNNN``, its bytes exactly as archived,
  with pax headers ``VAULT.item``, ``VAULT.uid``, ``VAULT.flags`` (a JSON list) and
  ``VAULT.internal_date`` (the archive's time string; the member's mtime is the same, to the
  second) (:func:`restore_members`, :func:`read_restore`);
  a message whose blob could not be read is a member ``unreadable/NNNNNN`` with no bytes and
  pax headers ``VAULT.item`` and ``VAULT.reason`` (the caller skips and reports it);
- an export: the export directory's files (vault/restore/export.py), by relative path
  (:func:`directory_members`, :func:`extract_export`).

A stream that ends early (the service stopped, a read failed) is refused by the reader: the
member count in the head says how many to expect.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from vault.model import parse_time
from vault.restore.pointintime import Message, Unreadable

HEAD = ".vault-stream.json"
_PAX = "VAULT."


class StreamError(Exception):
    """The stream is not what the service sends, or it ended early."""


class _Sink:
    """A write-only file that hands out what was written since the last ``take``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _member(name: str, data: bytes, *, mtime: float = 0, pax: dict[str, str] | None = None):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o600
    info.pax_headers = dict(pax or {})
    return info, data


def tar_stream(head: dict, members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> Iterator[bytes]:
    """The stream's bytes, a chunk per member: the head, then ``members`` (``head["members"]``
    must say how many)."""
    sink = _Sink()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        info, data = _member(HEAD, json.dumps(head).encode())
        tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
            chunk = sink.take()
            if chunk:
                yield chunk
    chunk = sink.take()
    if chunk:
        yield chunk


def restore_members(messages: Iterable[Message | Unreadable]) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    for n, m in enumerate(messages, 1):
        if isinstance(m, Unreadable):
            yield _member(f"unreadable/{n:06d}", b"", pax={f"{_PAX}item": m.item, f"{_PAX}reason": m.reason})
            continue
        pax = {f"{_PAX}item": m.item, f"{_PAX}uid": str(m.uid), f"{_PAX}flags": json.dumps(m.flags)}
        mtime = 0.0
        if m.internal_date:
            pax[f"{_PAX}internal_date"] = m.internal_date
            mtime = parse_time(m.internal_date).timestamp()
        yield _member(f"messages/{n:06d}", m.data, mtime=mtime, pax=pax)


def directory_members(root: Path, files: list[str]) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """The files ``files`` (relative paths) of directory ``root``, read one at a time."""
    for rel in files:
        yield _member(rel, (root / rel).read_bytes())


def files_of(root: Path) -> list[str]:
    """Every regular file under ``root``, as sorted relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


class Reader:
    """A stream being read: ``head`` at once, then the members, one at a time."""

    def __init__(self, body: BinaryIO, kind: str):
        try:
            self.tar = tarfile.open(fileobj=body, mode="r|")
            first = self.tar.next()
            if first is None or first.name != HEAD:
                raise StreamError(f"the service's stream does not start with {HEAD}")
            self.head = json.loads(self._read(first))
        except (tarfile.TarError, OSError, EOFError, ValueError, http.client.HTTPException) as e:
            raise StreamError(f"the service's stream is unreadable: {e}") from None
        if self.head.get("kind") != kind:
            raise StreamError(f"the service sent a {self.head.get('kind')!r} stream, not {kind!r}")

    def _read(self, info: tarfile.TarInfo) -> bytes:
        f = self.tar.extractfile(info)
        if f is None:
            raise StreamError(f"{info.name}: not a regular file")
        data = f.read()
        if len(data) != info.size:
            raise StreamError(f"{info.name}: the stream ended early")
        return data

    def members(self) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
        expected, seen = int(self.head.get("members", -1)), 0
        try:
            while (info := self.tar.next()) is not None:
                if not info.isfile():
                    raise StreamError(f"{info.name}: not a regular file")
                seen += 1
                yield info, self._read(info)
        except (tarfile.TarError, OSError, EOFError, http.client.HTTPException) as e:
            raise StreamError(f"the service's stream broke off after {seen} of {expected}: {e}") from None
        if seen != expected:
            raise StreamError(f"the service's stream ended after {seen} of {expected} members")


def read_restore(body: BinaryIO) -> tuple[dict, Iterator[Message | Unreadable]]:
    """A restore stream: its head, and its messages (or what could not be read) as they arrive."""
    reader = Reader(body, "restore")

    def messages() -> Iterator[Message | Unreadable]:
        for info, data in reader.members():
            pax = info.pax_headers
            try:
                if info.name.startswith("unreadable/"):
                    yield Unreadable(pax[f"{_PAX}item"], pax.get(f"{_PAX}reason", "unreadable"))
                    continue
                flags = json.loads(pax[f"{_PAX}flags"])
                yield Message(
                    pax[f"{_PAX}item"], int(pax[f"{_PAX}uid"]), flags, pax.get(f"{_PAX}internal_date"), data
                )
            except (KeyError, ValueError) as e:
                raise StreamError(f"{info.name}: bad message headers: {e}") from None

    return reader.head, messages()


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise StreamError(f"refusing to write {name!r}: not a plain relative path")
    return path


def check_new_directory(path: Path) -> None:
    """StreamError unless ``path`` is missing or an empty directory."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StreamError(f"{path} exists and is not empty: choose a new export directory")


def extract_export(body: BinaryIO, path: Path) -> dict:
    """Write an export stream into the new directory ``path`` (as this process's user);
    returns the stream's head (the export's report)."""
    path = Path(path)
    check_new_directory(path)
    reader = Reader(body, "export")
    path.mkdir(parents=True, exist_ok=True)
    for info, data in reader.members():
        rel = _safe(info.name)
        target = path.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return reader.head
