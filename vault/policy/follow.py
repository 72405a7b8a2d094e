"""What must follow committed entries, run by whichever writer committed them (the broker's
committer during live ingest, or a command holding the vault itself): a hold placed or
released moves the store's legal-hold flags; a requested sweep is run now."""

from __future__ import annotations

import logging

from vault.entries import EntrySpec, Kind
from vault.model import parse_time

log = logging.getLogger(__name__)

_HOLD_KINDS = frozenset({Kind.HOLD_PLACED, Kind.HOLD_RELEASED})


def after_commit(vault, entries: list[EntrySpec]) -> None:
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
