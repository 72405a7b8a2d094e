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
    status.update(_dealer_spool(vault))
    return status


def _dealer_spool(vault: Vault) -> dict:
    """The live-ingest dealer's spool, when it lives on this host: waiting and quarantined events."""
    from vault.ingest.spool import spool_status

    spool = spool_status(vault.config.path("dealer", "spool_path"))
    if not spool["exists"]:
        return {}
    out = {"dealer_spool_pending": spool["pending"], "dealer_spool_quarantined": spool["quarantined"]}
    if spool["quarantine"]:
        out["dealer_quarantine"] = "; ".join(f"bad/{q['name']}: {q['reason']}" for q in spool["quarantine"])
    return out
