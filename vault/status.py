"""A vault's vital signs, for ``vaultctl status`` and the demo summary, and what in them is a
problem (something down: ``vaultctl status`` then exits non-zero)."""

from __future__ import annotations

import sqlite3
import time

from vault.archive import Vault
from vault.config import Config
from vault.model import format_time


def vault_status(vault: Vault) -> dict:
    status: dict[str, str | int] = {"home": str(vault.config.home)}
    from vault.dates import site_zone, zone_name

    status.update(vault.catalog.counts())
    status["timezone"] = zone_name(site_zone(vault.config))  # bare dates are read in it
    status["ledger_entries"] = vault.ledger.size
    checkpoint = vault.ledger.checkpoint()
    status["checkpoint"] = f"size {checkpoint.size} root {checkpoint.root[:16]}…" if checkpoint else "none"
    if vault.witnesses:
        status["witnessed"] = "; ".join(vault.witnesses.summary(vault.ledger))
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
    try:
        jobs = JobStore(path)
    except sqlite3.Error as e:  # a read-only home: the queue is the running broker's to report
        return {"broker_jobs": f"not readable here ({e})"}
    try:
        out: dict[str, int | float | str] = {
            f"broker_jobs_{state.lower()}": n for state, n in jobs.counts().items()
        }
        pending = jobs.jobs("PENDING", limit=1)
        if pending:
            out["broker_oldest_pending_seconds"] = round(time.time() - pending[0].created, 1)
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


def service_status(health: dict | None) -> dict:
    """The vault service's part of the status: its broker, workers, last event."""
    if health is None:
        return {"service": "not running"}
    out = {"service": f"running (pid {health['pid']})", "service_broker": health.get("broker")}
    workers = health.get("workers") or {}
    out["workers"] = ", ".join(f"{n} (seen {s:g} s ago)" for n, s in sorted(workers.items())) or "none"
    for name, when in sorted((health.get("lost_workers") or {}).items()):
        out[f"worker_lost_{name}"] = f"silent since {format_time(_utc(when))}"
    if health.get("last_event_at"):
        out["last_event"] = format_time(_utc(health["last_event_at"]))
    return out


def problems(config: Config | None, status: dict, health: dict | None) -> list[str]:
    """What is down: the service (where live ingest has run), a worker gone silent and not
    back, no worker for waiting jobs."""
    found = []
    if health is None:
        if config is not None and config.path("broker", "jobs_path").exists():
            found.append("the vault service is not running (live ingest has run here)")
        return found
    if health.get("broker") != "running":
        found.append("the vault service's broker is not running")
    for name in sorted(health.get("lost_workers") or {}):
        found.append(f"worker {name} went silent and no worker has taken its place")
    if not health.get("workers") and status.get("broker_jobs_pending"):
        found.append(f"no worker connected; {status['broker_jobs_pending']} job(s) waiting")
    return found


def _utc(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)
