"""Whole-vault verification: the ledger's chain and signatures, its witnesses, and every blob it references."""

from __future__ import annotations

from vault.archive import Vault
from vault.entries import CONTENT_KINDS, Kind
from vault.model import Problem
from vault.store.ledger import LedgerError


def referenced_blobs(vault: Vault) -> set[str]:
    """Blobs that some item not yet purged points to, read from the ledger itself (the
    source of truth), not from the derived catalog."""
    # keyed by Entry.item as recorded (content and purge entries always name one)
    item_blob: dict[str | None, str] = {}
    purged: set[str | None] = set()
    try:
        for entry in vault.ledger.entries():
            if entry.kind in CONTENT_KINDS:
                item_blob[entry.item] = entry.data["blob"]
            elif entry.kind == Kind.RETENTION_PURGED:
                purged.add(entry.item)
    except LedgerError:
        # the ledger itself is damaged (verify reports how); still check the blobs the
        # catalog knows, so one report covers both
        return set(vault.catalog.referenced_blobs())
    return {blob for item, blob in item_blob.items() if item not in purged}


def check_vault(vault: Vault, *, read_data: bool = False, progress=None) -> list[Problem]:
    problems = list(vault.ledger.verify(progress=progress))
    problems += vault.witnesses.check(vault.ledger)
    wanted = referenced_blobs(vault) | set(vault.ledger.sealed_blobs())
    problems += vault.store.check(wanted, read_data=read_data, progress=progress)
    return problems
