"""The frames the broker, its workers and the dealers exchange (ZeroMQ multipart).

Dealer router (dealer DEALER -> broker ROUTER)::

    D->B [EVENT, event_id, raw, origin]      B->D [ACK, event_id]   once the job is durable

Control router (worker DEALER, routing id = the worker's name)::

    W->B [READY]                  one more job welcome
    W->B [HEARTBEAT, idle]        liveness, from the worker's heartbeat socket ("<name>/hb");
                                  idle "1"/"0" lets a restarted broker re-learn who waits
    W->B [DONE, job_id, result]   result: JSON {"entries": [...]}; blobs already flushed
    W->B [FAILED, job_id, reason] the event cannot be processed: dead-letter list
    W->B [POSTPONE, job_id, reason]  try again later
    B->W [TAKE, job_id]

Worker router (worker DEALER, same routing id)::

    W->B [GET, job_id]            B->W [JOB, job_id, raw] | [GONE, job_id] (no longer yours)
"""

from __future__ import annotations

import json
import uuid

from vault.entries import APPROVAL_KINDS, EntrySpec, Kind
from vault.model import format_time, now

EVENT, ACK = b"EVENT", b"ACK"
READY, HEARTBEAT, DONE, FAILED, POSTPONE, TAKE = (
    b"READY",
    b"HEARTBEAT",
    b"DONE",
    b"FAILED",
    b"POSTPONE",
    b"TAKE",
)
GET, JOB, GONE = b"GET", b"JOB", b"GONE"
HEARTBEAT_SUFFIX = b"/hb"


class ProtocolError(ValueError):
    pass


# ---------------------------------------------------------------- vnd.vault.Audit events
# Entries other processes need recorded while the broker's committer holds the vault travel
# to it on the dealer wire as this event (a closed list of kinds: the wire must not become
# a way to write arbitrary ledger entries). Encoded by vault/recording.py, handled by
# vault/ingest/worker/handlers/audit.py.
AUDIT_EVENT = "vnd.vault.Audit"
AUDIT_KINDS = frozenset(
    {
        Kind.SEARCH_RUN,
        Kind.EXPORT_MADE,
        Kind.RESTORE_DONE,
        Kind.HOLD_PLACED,
        Kind.HOLD_RELEASED,
        Kind.SWEEP_REQUESTED,
        *APPROVAL_KINDS,  # four eyes: requests, withdrawals and refusals
    }
)


def audit_event(kind: str, *, item: str | None, data: dict, actor: str) -> bytes:
    """The raw event asking the broker to record one audit-trail entry."""
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


def encode_result(entries: list[EntrySpec]) -> bytes:
    return json.dumps(
        {
            "entries": [
                {"kind": e.kind, "item": e.item, "data": e.data, "time": e.time, "actor": e.actor}
                for e in entries
            ]
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def decode_result(raw: bytes) -> list[EntrySpec]:
    try:
        result = json.loads(raw)
        entries = result["entries"]
        return [
            EntrySpec(e["kind"], e.get("item"), e.get("data") or {}, e.get("time"), e.get("actor"))
            for e in entries
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ProtocolError(f"malformed job result: {e}") from None


def worker_name(identity: bytes) -> bytes:
    """The worker a routing id belongs to (its heartbeat socket carries a suffix)."""
    return identity[: -len(HEARTBEAT_SUFFIX)] if identity.endswith(HEARTBEAT_SUFFIX) else identity
