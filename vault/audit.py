"""The audit trail's writer: searches, exports, restores and legal holds are ledger entries,
always, whether or not live ingest holds the vault.

Whoever runs them records the entry directly when it holds (or can take) the vault's writer
lock. While live ingest runs, the broker's committer holds it: the entry then travels to the
broker as a ``vnd.vault.Audit`` event on the dealer wire, is persisted before the ack, and
is committed by the committer like any event (exactly once). Only these kinds travel this
way: the dealer wire must not become a way to write arbitrary ledger entries. What must
follow such an entry once committed (a hold's S3 Object Lock flags; the retention sweep a
sweep request asks for) is :func:`after_commit`, run by whichever writer committed it.
"""

from __future__ import annotations

import json
import logging
import uuid

from vault.ingest.worker.context import EntrySpec, Quarantine
from vault.model import Kind, format_time, now, parse_time

log = logging.getLogger(__name__)

AUDIT_EVENT = "vnd.vault.Audit"
AUDIT_KINDS = frozenset(
    {
        Kind.SEARCH_RUN,
        Kind.EXPORT_MADE,
        Kind.RESTORE_DONE,
        Kind.HOLD_PLACED,
        Kind.HOLD_RELEASED,
        Kind.SWEEP_REQUESTED,
    }
)
_HOLD_KINDS = frozenset({Kind.HOLD_PLACED, Kind.HOLD_RELEASED})


class AuditUnrecorded(Exception):
    """Neither the vault nor the broker would take the entry."""


def audit_event(kind: str, *, item: str | None, data: dict, actor: str) -> bytes:
    if kind not in AUDIT_KINDS:
        raise ValueError(f"{kind} is not an audit entry")
    return json.dumps(
        {
            "event": AUDIT_EVENT,
            "kind": kind,
            "item": item,
            "data": data,
            "actor": actor,
            "timestamp": format_time(now()),
            "nonce": uuid.uuid4().hex,
        },
        sort_keys=True,
        ensure_ascii=False,
    ).encode()


def handle_audit(event: dict, ctx) -> list[EntrySpec]:
    """The worker's side: the entry as the requester described it."""
    kind, data, actor = event.get("kind"), event.get("data"), event.get("actor")
    if kind not in AUDIT_KINDS or not isinstance(data, dict) or not isinstance(actor, str):
        raise Quarantine(f"malformed {AUDIT_EVENT}: kind {kind!r}")
    item = event.get("item") if isinstance(event.get("item"), str) else None
    return [EntrySpec(kind, item, {**data, "event": ctx.event_id}, time=event.get("timestamp"), actor=actor)]


def after_commit(vault, entries: list[EntrySpec]) -> None:
    """Once these entries are committed: holds changed, so the store's legal-hold flags follow
    (vault/policy/sweep.py); a sweep was requested, so the writer sweeps now."""
    for spec in entries:
        if spec.kind == Kind.SWEEP_REQUESTED:
            from vault.policy.sweep import sweep

            as_of = (spec.data or {}).get("as_of")
            report = sweep(vault, now=parse_time(as_of) if as_of else None, actor=spec.actor)
            log.info(
                "requested retention sweep: %d purged, %d held, %d blobs deleted",
                len(report.purge),
                len(report.held),
                report.blobs_deleted,
            )
    if _HOLD_KINDS & {spec.kind for spec in entries}:
        from vault.policy.sweep import sync_storage_holds  # not for every search's entry

        sync_storage_holds(vault)


def record_audit(vault, kind: str, *, item: str | None = None, data: dict, actor: str | None = None) -> str:
    """Record the entry: ``"recorded"`` in the ledger now, or ``"queued"`` with the broker.
    ``vault`` may be read-only: then the writer lock is tried, and the broker is the fallback."""
    from vault.archive import Vault, VaultBusy, actor_of

    actor = actor_of(vault.config, actor)
    spec = EntrySpec(kind, item, data, actor=actor)
    if vault.writer:
        vault.record(kind, item=item, data=data, actor=actor)
        vault.commit()
        after_commit(vault, [spec])
        return "recorded"
    try:
        writer = Vault.open(vault.config, writer=True)
    except VaultBusy:
        return queue_entry(vault.config, kind, item=item, data=data, actor=actor)
    with writer:
        writer.record(kind, item=item, data=data, actor=actor)
        writer.commit()
        after_commit(writer, [spec])
    return "recorded"


def queue_entry(config, kind: str, *, item: str | None = None, data: dict, actor: str) -> str:
    """Hand the entry to the broker (the vault's writer while live ingest runs): ``"queued"``."""
    from vault.ingest.broker.submit import BrokerUnavailable, queue_with_broker

    try:
        queue_with_broker(config["dealer"]["broker"], [audit_event(kind, item=item, data=data, actor=actor)])
    except BrokerUnavailable as e:
        raise AuditUnrecorded(f"the vault is busy and {e}") from None
    return "queued"
