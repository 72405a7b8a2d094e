"""What must follow committed entries, run by the writer that committed them (this process,
or the vault service's operation): a hold placed or released moves the store's legal-hold
flags. Live ingest's entries never need it (its committer records no hold)."""

from __future__ import annotations

from vault.entries import EntrySpec, Kind

_HOLD_KINDS = frozenset({Kind.HOLD_PLACED, Kind.HOLD_RELEASED})


def after_commit(vault, entries: list[EntrySpec]) -> None:
    if _HOLD_KINDS & {spec.kind for spec in entries}:
        from vault.policy.sweep import sync_storage_holds  # not for every search's entry

        sync_storage_holds(vault)
