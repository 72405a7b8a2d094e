"""The worker's side of a ``vnd.vault.Audit`` event: the entry as the requester described it
(the event's shape and its closed list of kinds: vault/ingest/protocol.py)."""

from __future__ import annotations

from vault.entries import EntrySpec
from vault.ingest.context import HandlerContext, Quarantine
from vault.ingest.protocol import AUDIT_EVENT, AUDIT_KINDS


def handle_audit(event: dict, ctx: HandlerContext) -> list[EntrySpec]:
    kind, data, actor = event.get("kind"), event.get("data"), event.get("actor")
    if kind not in AUDIT_KINDS or not isinstance(data, dict) or not isinstance(actor, str):
        raise Quarantine(f"malformed {AUDIT_EVENT}: kind {kind!r}")
    item = event.get("item") if isinstance(event.get("item"), str) else None
    return [EntrySpec(kind, item, {**data, "event": ctx.event_id}, time=event.get("timestamp"), actor=actor)]
