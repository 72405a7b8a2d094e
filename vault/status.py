"""A vault's vital signs, for ``vaultctl status`` and the demo summary."""
from __future__ import annotations

from vault.archive import Vault


def vault_status(vault: Vault) -> dict:
    status = {"home": str(vault.config.home)}
    status.update(vault.catalog.counts())
    status["ledger_entries"] = vault.ledger.size
    checkpoint = vault.ledger.checkpoint()
    status["checkpoint"] = f"size {checkpoint.size} root {checkpoint.root[:16]}…" if checkpoint else "none"
    status.update({f"store_{k}": v for k, v in vault.store.stats().items()})
    return status
