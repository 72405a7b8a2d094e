"""Regenerate every derived view from the sources of truth: the ledger and the blobs."""

from __future__ import annotations

from vault.archive import Vault
from vault.config import Config


def rebuild(config: Config) -> dict:
    catalog_path = config.path("catalog")
    with Vault.open(config, writer=True) as vault:
        vault.store.rebuild_index()
        vault.catalog.close()
        for suffix in ("", "-wal", "-shm"):
            catalog_path.with_name(catalog_path.name + suffix).unlink(missing_ok=True)
        from vault.store.catalog import Catalog

        vault.catalog = Catalog(catalog_path)
        vault.catalog.catch_up(vault.ledger)
        index = vault.index
        if index is None:  # a writer always opens it
            raise RuntimeError(f"{config.home}: the vault opened without its search index")
        index.clear()
        index.catch_up(vault.ledger, vault.store.get, vault.catalog)
        return {**vault.catalog.counts(), "indexed": len(index)}
