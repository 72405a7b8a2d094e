"""The scheduled jobs ``vaultctl serve --once`` runs: retention sweeps, and reconciliation when
the live-ingest collector is configured. Each does its work with the vault's writer, or asks
the vault service to (its local API) while the service holds the vault (vault/recording.py).
The running service schedules the same work itself (vault/service/daemon.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from vault.config import Config
from vault.model import format_time
from vault.policy.sweep import SweepReport, sweep, sync_storage_holds
from vault.recording import write_or_serve

log = logging.getLogger("vault.service")


def sweep_or_serve(
    config: Config, *, actor: str, now: datetime | None = None, acting_for: str | None = None
) -> SweepReport:
    """Sweep with the vault's writer; while the vault service holds it, the service sweeps
    (as its caller, for ``acting_for``) and its report comes back. Raises Unrecorded when
    neither can."""

    def write(vault) -> SweepReport:
        report = sweep(vault, now=now, actor=actor)
        sync_storage_holds(vault)
        return report

    # opened per run: between runs the single-writer lock stays free for imports
    params = {"as_of": format_time(now) if now else None, "acting_for": acting_for}
    result = write_or_serve(config, write, service_request=("sweep", params))
    return result if isinstance(result, SweepReport) else SweepReport(**result)


def reconcile_all(config: Config) -> list[dict]:
    """Every live folder, through the collector in [collector] address; by the vault service
    while it holds the vault."""
    from vault.ingest.collector.client import CollectorClient
    from vault.ingest.reconcile import reconcile

    def write(vault) -> list[dict]:
        with CollectorClient.from_config(config) as collector:
            return [r.to_json() for r in reconcile(vault, collector)]

    return write_or_serve(config, write, service_request=("reconcile", {}))


def sweep_job(config: Config) -> Callable[[], dict]:
    def run() -> dict:
        report = sweep_or_serve(config, actor="vault-scheduler")
        log.info(
            "retention sweep: %d purged, %d held, %d blobs deleted",
            len(report.purge),
            len(report.held),
            report.blobs_deleted,
        )
        return report.__dict__

    return run


def scheduled_jobs(config: Config) -> dict[str, Callable[[], object]]:
    return {"sweep": sweep_job(config), "reconcile": lambda: reconcile_all(config)}
