"""Record now, or queue through the broker: the one place that decides.

The vault has one writer. While live ingest runs, that is the broker's committer; any other
process that must change the archive (an audit entry, a hold, a sweep, a reconciliation)
then hands the broker events on the dealer wire instead, which the broker persists before
it acknowledges and its workers turn into entries the committer records (exactly once).
When nobody holds the vault, the caller takes the writer lock and does the work itself.

A home this process cannot write (a read-only file system: a snapshot, a read-only bind mount)
has no writer here: as while another process writes, entries go to the vault service, and
without one the work is refused. Searches, restores and exports check that first
(``ensure_recordable``), so none of them writes output it cannot audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from vault.archive import Vault, VaultBusy, VaultReadOnly
from vault.config import Config
from vault.entries import EntrySpec, Kind

T = TypeVar("T")

_SERVICE_AUDITED = frozenset({Kind.SEARCH_RUN, Kind.EXPORT_MADE, Kind.RESTORE_DONE})


class Unrecorded(Exception):
    """Neither the vault nor the broker would take the work."""


def read_only_refusal(config: Config) -> str:
    return (
        f"the home {config.home} is read-only: the audit entry cannot be recorded here, and no vault "
        "service answers for it, so nothing was done (run it where the home is writable, or with "
        "'vaultctl serve' running on the writable home)"
    )


def ensure_recordable(vault: Vault) -> None:
    """Raise Unrecorded now, before a search, restore or export writes anything, when its audit
    entry could not be recorded: the home is read-only here and no vault service answers."""
    if vault.writer or not vault.read_only:
        return
    from vault.service_client import service_client

    if service_client(vault.config) is None:
        raise Unrecorded(read_only_refusal(vault.config))


@dataclass
class Outcome(Generic[T]):
    """What the writer's work returned, or (``queued``) the ids of the events the broker took."""

    result: T | None = None
    queued: list[str] = field(default_factory=list)


def write_or_queue(
    config: Config,
    write: Callable[[Vault], T],
    queue: Callable[[], list[bytes]],
    *,
    queue_only: bool = False,
    service_request: tuple[str, dict] | None = None,
) -> Outcome[T]:
    """Run ``write`` with the vault opened as its writer; while another process (the broker's
    committer) holds it, or with ``queue_only``, hand the events ``queue()`` makes to the
    broker (``[dealer] broker``) and wait for its acks. When the holder is the vault service
    and ``service_request`` names one of its operations (``(op, params)``), the service does
    the work instead and its answer is the result. Raises :class:`Unrecorded` when neither
    the service nor the broker takes it."""
    read_only = False
    if not queue_only:
        try:
            vault = Vault.open(config, writer=True)
        except VaultReadOnly:
            read_only = True
        except VaultBusy:
            pass
        else:
            with vault:
                return Outcome(result=write(vault))
    if service_request is not None:
        from vault.service_client import ServiceError, service_client

        client = service_client(config)
        if client is not None:
            try:
                return Outcome(result=client.call(*service_request))
            except ServiceError as e:
                raise Unrecorded(f"the vault service did not record it: {e}") from None
    if read_only:  # a broker is the writable home's; its service is the way to it
        raise Unrecorded(read_only_refusal(config))
    from vault.ingest.broker.submit import BrokerUnavailable, queue_with_broker

    try:
        return Outcome(queued=queue_with_broker(config["dealer"]["broker"], queue()))
    except BrokerUnavailable as e:
        raise Unrecorded(f"the vault is busy and {e}") from None


def record_entry(
    vault: Vault, spec: EntrySpec, *, follow: Callable[[Vault, list[EntrySpec]], None] | None = None
) -> str:
    """Record one audit-trail entry (a kind of vault/ingest/protocol.py's AUDIT_KINDS) and run
    ``follow`` after its commit: ``"recorded"`` in the ledger now, or ``"queued"`` with the
    broker (whose committer runs the follow-up). ``vault`` may be read-only: then the writer
    lock is tried, and the broker is the fallback."""
    from vault.ingest.protocol import audit_event

    def write(writer: Vault) -> None:
        writer.record(spec.kind, item=spec.item, data=spec.data, actor=spec.actor)
        writer.commit()
        if follow is not None:
            follow(writer, [spec])

    if vault.writer:
        write(vault)
        return "recorded"
    actor = spec.actor or "unknown"
    # the service records a search's, export's or restore's entry itself; anything else (a
    # hold, a request of the four eyes) made by an engine in another process goes through the
    # broker the service runs, as a vnd.vault.Audit event
    request = ("audit", {"kind": spec.kind, "item": spec.item, "data": spec.data})
    outcome = write_or_queue(
        vault.config,
        write,
        lambda: [audit_event(spec.kind, item=spec.item, data=spec.data, actor=actor)],
        service_request=request if spec.kind in _SERVICE_AUDITED else None,
    )
    return "queued" if outcome.queued else "recorded"
