"""Checkpoints in the store's S3 bucket under Object Lock: ``checkpoints/<size>-<root>.note``.

Each object is written once with Object Lock retention (``[witness] lock_mode``, COMPLIANCE by
default, for ``lock_days``), so the home's own S3 credentials cannot delete or overwrite the
version written: a newer write, or a delete marker, leaves it listed among the key's versions,
which is how it is read back. The key carries the size and root, so one listing (1,000 keys a
request) tells the whole witnessed history without reading an object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PREFIX = "checkpoints/"
_KEY = re.compile(r"^checkpoints/(\d{12})-([0-9a-f]{64})\.note$")


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    root: bytes
    version_id: str | None
    deleted: bool  # a delete marker: someone tried to remove it


def key_of(size: int, root_hex: str) -> str:
    return f"{PREFIX}{size:012d}-{root_hex}.note"


class Bucket:
    def __init__(self, backend, mode: str, days: int):
        if not hasattr(backend, "put_retained"):
            raise ValueError(
                '[witness] bucket = true needs [store] backend = "s3" (a bucket with Object Lock)'
            )
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ValueError(f"[witness] lock_mode {mode!r}: COMPLIANCE or GOVERNANCE")
        if days <= 0:
            raise ValueError("[witness] lock_days must be at least 1")
        self.backend = backend
        self.mode = mode
        self.days = days

    def __str__(self) -> str:
        return f"the bucket {self.backend.name}{PREFIX}"

    def record(self, size: int, root_hex: str, note: bytes) -> dict:
        """Write the checkpoint (once: it is kept as written); the evidence of its retention."""
        key = key_of(size, root_hex)
        if self.backend.exists(key):
            ev = self.backend.head_version(key)
        else:
            until = datetime.now(UTC) + timedelta(days=self.days)
            ev = self.backend.put_retained(key, note, self.mode, until)
        return {"bucket": self.backend.name, "key": key, **ev}

    def listed(self, from_size: int = 0) -> list[Listed]:
        """Every checkpoint object version of at least ``from_size`` entries, by size."""
        after = f"{PREFIX}{from_size - 1:012d}-~" if from_size > 0 else ""
        out = []
        for v in self.backend.versions(PREFIX, after=after):
            m = _KEY.match(v["key"])
            if m is None:
                continue  # not one of ours: it claims nothing
            out.append(
                Listed(v["key"], int(m.group(1)), bytes.fromhex(m.group(2)), v["version_id"], v["deleted"])
            )
        return sorted(out, key=lambda x: (x.size, x.key))
