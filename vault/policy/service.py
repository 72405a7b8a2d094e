"""The scheduled jobs ``vaultctl serve`` runs: retention sweeps (and reconciliation, when
the live-ingest collector is configured)."""
from __future__ import annotations

import logging
from typing import Callable

from vault.archive import Vault
from vault.config import Config

log = logging.getLogger("vault.service")


def sweep_job(config: Config) -> Callable[[], dict]:
    def run() -> dict:
        from vault.policy.sweep import sweep, sync_storage_holds

        # opened per run: between runs the single-writer lock stays free for imports
        with Vault.open(config, writer=True) as vault:
            report = sweep(vault, actor="vault-scheduler")
            sync_storage_holds(vault)
        log.info("retention sweep: %d purged, %d held, %d blobs deleted",
                 len(report.purge), len(report.held), report.blobs_deleted)
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
