"""The audit trail: searches, exports and restores are ledger entries, always, whether or not
live ingest holds the vault (recorded now, or by the vault service: vault/recording.py).

A search, export or restore records its entry before it reports success; what it reads is
named in the entry's data (the query and result count, the export's manifest hash, the
restored folder and time).
"""

from __future__ import annotations

from vault.entries import EntrySpec
from vault.policy.follow import after_commit
from vault.recording import record_entry


def record_audit(vault, kind: str, *, item: str | None = None, data: dict, actor: str | None = None) -> str:
    """Record the entry (``"recorded"``), with this process's writer or the vault service's.
    ``actor`` is a login name (default: the OS user), recorded as its directory id when the
    directory knows it."""
    from vault.archive import actor_of

    spec = EntrySpec(kind, item, data, actor=actor_of(vault.config, actor))
    return record_entry(vault, spec, follow=after_commit)
