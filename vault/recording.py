"""Record now, or hand the work to the vault service: the one place that decides.

The vault has one writer. While ``vaultctl serve`` runs, that is the service's committer; a
command in another process that must change the archive then asks the service, through its
local API (a unix socket that tells the service who calls: vault/service/api.py), to do it
with its writer. When nobody holds the vault, the caller takes the writer lock and does the
work itself. Nothing administrative ever travels on the event wire (the dealer router
carries Cyrus's events only: vault/ingest/broker/validate.py).

Only what the service has an operation for can be handed to it: a search's, an export's or
a restore's audit entry (``audit``), a sweep, a reconciliation. Holds, releases, erasures
and the four-eyes requests are decided by their engines against the vault as its writer sees
it, so they run in the service (the CLI asks it for the whole operation) or with the lock;
an engine in another process never records one behind the service's back (:class:`Unrecorded`).

A home this process cannot write (a read-only file system: a snapshot, a read-only bind mount)
has no writer here: as while another process writes, entries go to the vault service, and
without one the work is refused. Searches, restores and exports check that first
(``ensure_recordable``), so none of them writes output it cannot audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from vault.archive import Vault, VaultBusy, VaultReadOnly
from vault.config import Config
from vault.entries import EntrySpec, Kind

T = TypeVar("T")

SERVICE_AUDITED = frozenset({Kind.SEARCH_RUN, Kind.EXPORT_MADE, Kind.RESTORE_DONE, Kind.MAIL_READ})
"""The audit entries an engine in another process hands to the service (its ``audit``
operation): the record of what that process read."""


class Unrecorded(Exception):
    """Neither this process (the vault is busy) nor the vault service would do the work."""


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


def write_or_serve(
    config: Config, write: Callable[[Vault], T], *, service_request: tuple[str, dict] | None = None
) -> T | Any:
    """Run ``write`` with the vault opened as its writer. While another process holds it
    (the vault service), the service's operation ``service_request`` (``(op, params)``) does
    the work instead and its answer is the result. Raises :class:`Unrecorded` when neither
    can: busy, and no request for the service, or no service answering, or its refusal."""
    read_only, busy = False, None
    try:
        vault = Vault.open(config, writer=True)
    except VaultReadOnly as e:
        read_only, busy = True, e.args[0]
    except VaultBusy as e:
        busy = e.args[0] if e.args else "the vault is busy"
    else:
        with vault:
            return write(vault)
    from vault.service_client import ServiceError, service_client

    client = service_client(config)
    if client is None and read_only:
        raise Unrecorded(read_only_refusal(config))
    if client is None:
        raise Unrecorded(
            f"{busy} (another command writes the vault; while 'vaultctl serve' runs, commands go through it)"
        )
    if service_request is None:
        raise Unrecorded(
            f"the vault service ('vaultctl serve') holds the vault: run this through vaultctl, "
            f"which asks the service, not with the vault opened by this process ({busy})"
        )
    try:
        return client.call(*service_request)
    except ServiceError as e:
        raise Unrecorded(f"the vault service did not do it: {e}") from None


def record_entry(
    vault: Vault, spec: EntrySpec, *, follow: Callable[[Vault, list[EntrySpec]], None] | None = None
) -> str:
    """Record one audit-trail entry and run ``follow`` after its commit; returns
    ``"recorded"``. ``vault`` may be read-only: then the writer lock is taken for it, or, while
    the vault service holds the vault, a search's, export's or restore's entry is recorded by
    the service (which runs its follow-up, if any: none of these has one)."""

    def write(writer: Vault) -> None:
        writer.record(spec.kind, item=spec.item, data=spec.data, actor=spec.actor)
        writer.commit()
        if follow is not None:
            follow(writer, [spec])

    if vault.writer:
        write(vault)
        return "recorded"
    # the service records the entry as its caller's, whatever this process says the actor is
    request = ("audit", {"kind": spec.kind, "item": spec.item, "data": spec.data})
    write_or_serve(vault.config, write, service_request=request if spec.kind in SERVICE_AUDITED else None)
    return "recorded"
