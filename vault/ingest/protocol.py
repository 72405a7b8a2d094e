"""The frames the broker, its workers and the dealers exchange (ZeroMQ multipart).

Dealer router (dealer DEALER -> broker ROUTER): Cyrus's event notifications, nothing else
(administrative requests go to the vault service's local API; vault/ingest/broker/validate.py)::

    D->B [EVENT, event_id, raw, origin]      B->D [ACK, event_id]   once the job is durable
                                             event_id: the SHA-256 hex of raw

Control router (worker DEALER, routing id = the worker's name)::

    W->B [READY]                  one more job welcome (a worker starts with [worker]
                                  prefetch_jobs of them: that many TAKEs may queue at it)
    W->B [HEARTBEAT, idle, slots] liveness, from the worker's heartbeat socket ("<name>/hb"),
                                  which sends nothing else; idle "1"/"0" lets a restarted
                                  broker re-learn who waits, and for how many jobs (slots,
                                  its prefetch_jobs; absent: 1)
    W->B [DONE, job_id, result]   result: JSON {"entries": [...]}; blobs already flushed;
                                  checked against the job's event before anything is recorded
    W->B [FAILED, job_id, reason] the event cannot be processed: dead-letter list
    W->B [POSTPONE, job_id, reason]  try again later
    B->W [TAKE, job_id, raw]      the job and its event's bytes (no second round trip)

Worker router (worker DEALER, same routing id), for a worker that has a job's id only (a
TAKE of two frames, from a broker before the payload rode with it)::

    W->B [GET, job_id]            B->W [JOB, job_id, raw] | [GONE, job_id] (no longer yours)
"""

from __future__ import annotations

import json

from vault.entries import EntrySpec

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
MAX_SLOTS = 64  # credits an idle worker's heartbeat may claim at most

# events that only add an item of their own: consecutive ones of a mailbox run side by side
# (the broker's order, jobs.py); anything else waits for what came before it in its mailbox,
# and what comes after waits for it (so a worker reports it without a batching delay)
COMMUTING = ("MessageNew", "MessageAppend", "MailboxModseq")  # Modseq: recorded by the change it follows
# events that bring a message in: a later non-commuting event of the mailbox (an expunge, a
# flag change, a move) may name that message, so it waits for them even while they are
# postponed (they wait on the collector or the store, never on a later event: no deadlock)
ADDS_MESSAGE = ("MessageNew", "MessageAppend")


class ProtocolError(ValueError):
    pass


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
