"""Regenerate every derived view from the sources of truth: the ledger and the blobs.

Each is built aside and swapped in, so a rebuild killed at any point leaves the old view or
the new one: the store's pack indexes (one regenerated from its pack where it is missing or
wrong), its location index, the catalog (a new SQLite file renamed over the old one) and
the search index (a new generation, vault/index/generations.py).
"""

from __future__ import annotations

import os

from vault import faults
from vault.archive import Vault
from vault.config import Config
from vault.store.catalog import Catalog

CATALOG_DONE = "rebuild.catalog"  # a named crash point (vault/faults.py): catalog swapped, index not yet


def rebuild_catalog(vault: Vault) -> None:
    """Replay the whole ledger into a new catalog beside the old one, then rename it over."""
    path = vault.config.path("catalog")
    fresh_path = path.with_name(path.name + ".new")
    for suffix in ("", "-wal", "-shm"):
        fresh_path.with_name(fresh_path.name + suffix).unlink(missing_ok=True)
    fresh = Catalog(fresh_path)
    try:
        fresh.catch_up(vault.ledger)
        fresh.compact(0)  # written by the replay alone: its b-trees full
        fresh.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        fresh.close()
    vault.catalog.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(fresh_path, path)
    vault.catalog = Catalog(path)


def rebuild(config: Config) -> dict:
    with Vault.open(config, writer=True) as vault:
        repaired = vault.store.repair_pack_indexes()
        vault.store.rebuild_index()
        rebuild_catalog(vault)
        faults.point(CATALOG_DONE)
        vault.rebuild_index()  # aside, then swapped in: never half an index
        index = vault.index
        if index is None:  # a writer always has it
            raise RuntimeError(f"{config.home}: the vault opened without its search index")
        return {**vault.catalog.counts(), "indexed": len(index), "pack_indexes_rewritten": len(repaired)}
