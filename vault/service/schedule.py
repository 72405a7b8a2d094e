"""The scheduled jobs ``vaultctl serve`` runs: retention sweeps, and reconciliation when the
live-ingest collector is configured. Each does its work with the vault's writer, or asks the
broker's committer to while live ingest holds the vault (vault/recording.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from vault.config import Config
from vault.entries import Kind
from vault.ingest.protocol import audit_event
from vault.model import format_time
from vault.policy.sweep import SweepReport, sweep, sync_storage_holds
from vault.recording import write_or_queue

log = logging.getLogger("vault.service")


def sweep_or_request(config: Config, *, actor: str, now: datetime | None = None) -> SweepReport | None:
    """Sweep with the vault's writer and return the SweepReport; while live ingest holds the
    writer, ask the broker's committer to sweep instead (a ledger entry, then its purges) and
    return None. Raises Unrecorded when neither the vault nor the broker answers."""

    def write(vault) -> SweepReport:
        report = sweep(vault, now=now, actor=actor)
        sync_storage_holds(vault)
        return report

    def request() -> list[bytes]:
        data = {"as_of": format_time(now)} if now else {}
        return [audit_event(Kind.SWEEP_REQUESTED, item=None, data=data, actor=actor)]

    # opened per run: between runs the single-writer lock stays free for imports
    return write_or_queue(config, write, request).result


def reconcile_all(config: Config) -> list[dict]:
    """Every live folder, through the collector in [collector] address; queued with the broker
    when the broker's committer holds the vault."""
    from vault.ingest.collector.client import CollectorClient
    from vault.ingest.reconcile import reconcile

    def write(vault) -> list[dict]:
        with CollectorClient.from_config(config) as collector:
            return [r.to_json() for r in reconcile(vault, collector)]

    outcome = write_or_queue(config, write, lambda: [event for _, event in reconcile_requests(config)])
    return outcome.result if outcome.result is not None else [{"queued": eid} for eid in outcome.queued]


def reconcile_requests(
    config: Config, mailboxes: list[str] | None = None, actor: str | None = None
) -> list[tuple[str, bytes]]:
    """(name, event) asking the broker's workers to reconcile each of ``mailboxes`` (names or
    ids; default: every live folder, read from the catalog)."""
    from vault.archive import Vault
    from vault.ingest.reconcile import ACTOR, live_folder_targets, reconcile_event

    with Vault.open(config) as reader:
        targets = live_folder_targets(reader.catalog, mailboxes)
    return [(name, reconcile_event(name, mailbox_id, actor or ACTOR)) for name, mailbox_id in targets]


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
    return {"sweep": sweep_job(config), "reconcile": lambda: reconcile_all(config)}
