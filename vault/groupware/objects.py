"""Which archived message is which groupware object: blob -> (type, UID), read from the
message's headers once and remembered (``[groupware] cache_path``, SQLite).

Why at query time and not at ingest: a blob's bytes never change, so what its headers say
never does either; a cache keyed by the blob is always right, needs no ledger entry and no
change to the importers or the live handlers, and so sees a Kolab object however it arrived
(``vaultctl import``, live ingest, reconciliation). It costs one read of each blob of a
folder the first time the folder is asked about; deleting the file only costs that again.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from vault.groupware.kolab import header_identity

SCHEMA = "CREATE TABLE IF NOT EXISTS objects (blob TEXT PRIMARY KEY, type TEXT, uid TEXT)"


class ObjectIndex:
    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():  # message metadata: its owner's alone, whatever the umask
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    @classmethod
    def from_config(cls, config) -> ObjectIndex:
        return cls(config.path("groupware", "cache_path"))

    def close(self) -> None:
        self.db.close()

    def identities(self, rows: list[dict], read) -> dict[str, tuple[str, str] | None]:
        """blob -> (type, uid) or None (not a Kolab object, or purged before it was read) for
        the blobs of ``rows`` (catalog items); ``read(blob)`` gives a blob's bytes."""
        blobs = sorted({r["blob"] for r in rows})
        out: dict[str, tuple[str, str] | None] = {}
        for i in range(0, len(blobs), 500):
            chunk = blobs[i : i + 500]
            q = f"SELECT blob, type, uid FROM objects WHERE blob IN ({','.join('?' * len(chunk))})"
            for blob, kind, uid in self.db.execute(q, chunk):
                out[blob] = (kind, uid) if kind else None
        alive = {r["blob"] for r in rows if not r.get("purged_at")}
        new = []
        for blob in blobs:
            if blob in out:
                continue
            if blob not in alive:
                out[blob] = None  # its bytes are gone; not cached, a later copy may bring them back
                continue
            found = header_identity(read(blob))
            out[blob] = found
            new.append((blob, *(found or (None, None))))
        if new:
            self.db.executemany("INSERT OR REPLACE INTO objects(blob, type, uid) VALUES (?,?,?)", new)
        return out
