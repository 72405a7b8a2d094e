"""A vault's vital signs, for ``vaultctl status`` and the demo summary."""

from __future__ import annotations

from vault.archive import Vault
from vault.config import Config


def vault_status(vault: Vault) -> dict:
    status = {"home": str(vault.config.home)}
    status.update(vault.catalog.counts())
    status["ledger_entries"] = vault.ledger.size
    checkpoint = vault.ledger.checkpoint()
    status["checkpoint"] = f"size {checkpoint.size} root {checkpoint.root[:16]}…" if checkpoint else "none"
    status.update({f"store_{k}": v for k, v in vault.store.stats().items()})
    status.update(_dealer_spool(vault.config))
    status.update(_broker_queue(vault))
    return status


def _broker_queue(vault: Vault) -> dict:
    """The live-ingest job queue, when the broker runs on this host: counts by state and the
    dead-letter list with each reason (``vaultctl retry`` puts them back)."""
    from vault.ingest.broker.jobs import FAILED, JobStore

    path = vault.config.path("broker", "jobs_path")
    if not path.exists():
        return {}
    jobs = JobStore(path)
    try:
        out = {f"broker_jobs_{state.lower()}": n for state, n in jobs.counts().items()}
        failed = jobs.jobs(FAILED, limit=20)
        if failed:
            out["broker_failed"] = "; ".join(f"{j.id[:12]} {j.event or '?'}: {j.reason}" for j in failed)
    finally:
        jobs.close()
    return out


def mail_host_status(config: Config) -> dict:
    """A mail-host home's vital signs (``vaultctl init --mail-host``): its dealer's spool."""
    status = {"home": str(config.home), "role": config.role}
    spool = _dealer_spool(config)
    status.update(spool or {"dealer_spool": f"none yet at {config.path('dealer', 'spool_path')}"})
    return status


def _dealer_spool(config: Config) -> dict:
    """The live-ingest dealer's spool, when it lives on this host: waiting and quarantined events."""
    from vault.ingest.dealer.spool import spool_status

    spool = spool_status(config.path("dealer", "spool_path"))
    if not spool["exists"]:
        return {}
    out = {"dealer_spool_pending": spool["pending"], "dealer_spool_quarantined": spool["quarantined"]}
    if spool["quarantine"]:
        out["dealer_quarantine"] = "; ".join(f"bad/{q['name']}: {q['reason']}" for q in spool["quarantine"])
    return out
