"""The scheduled jobs ``vaultctl serve`` runs: retention sweeps (and reconciliation, when
the live-ingest collector is configured)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from vault.archive import Vault
from vault.config import Config

log = logging.getLogger("vault.service")


def sweep_or_request(config: Config, *, actor: str, now: datetime | None = None):
    """Sweep with the vault's writer and return the SweepReport; while live ingest holds the
    writer, ask the broker's committer to sweep instead (a ledger entry, then its purges) and
    return None. Raises AuditUnrecorded when neither the vault nor the broker answers."""
    from vault.archive import VaultBusy
    from vault.audit import queue_entry
    from vault.model import Kind, format_time
    from vault.policy.sweep import sweep, sync_storage_holds

    try:
        # opened per run: between runs the single-writer lock stays free for imports
        vault = Vault.open(config, writer=True)
    except VaultBusy:
        queue_entry(
            config, Kind.SWEEP_REQUESTED, data={"as_of": format_time(now)} if now else {}, actor=actor
        )
        return None
    with vault:
        report = sweep(vault, now=now, actor=actor)
        sync_storage_holds(vault)
    return report


def sweep_job(config: Config) -> Callable[[], dict]:
    def run() -> dict:
        report = sweep_or_request(config, actor="vault-scheduler")
        if report is None:
            log.info("retention sweep: live ingest holds the vault; the broker sweeps")
            return {"queued": True}
        log.info(
            "retention sweep: %d purged, %d held, %d blobs deleted",
            len(report.purge),
            len(report.held),
            report.blobs_deleted,
        )
        return report.__dict__

    return run


def scheduled_jobs(config: Config) -> dict[str, Callable[[], object]]:
    jobs = {"sweep": sweep_job(config)}
    try:
        from vault.ingest.reconcile import reconcile_all  # present once live ingest is set up
    except ImportError:
        return jobs
    jobs["reconcile"] = lambda: reconcile_all(config)
    return jobs
