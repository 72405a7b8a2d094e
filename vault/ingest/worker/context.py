"""What a live-ingest handler receives and returns (contracts in the ingest spec).

A handler is ``handle(event: dict, ctx: HandlerContext) -> list[EntrySpec]``: it reads the
catalog, writes blobs to the store (idempotent puts), asks the collector for what the event
lacks, and returns the ledger entries to record. Whoever runs it (a worker, reconciliation,
a test) records them with ``Vault.record`` and commits. A handler that cannot proceed
raises ``Quarantine`` (the event is kept with the reason and never retried by itself) or
``Postpone`` (try again later, e.g. a Logout before its Login is archived).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Quarantine(Exception):
    """The event cannot be processed as it is: keep it, with this reason, for an operator."""


class Postpone(Exception):
    """Not now: the job goes back to the queue and is retried later."""


@dataclass
class EntrySpec:
    kind: str
    item: str | None
    data: dict = field(default_factory=dict)
    time: str | None = None
    actor: str | None = None


@dataclass
class HandlerContext:
    catalog: Any  # vault.store.catalog.Catalog (read)
    store: Any  # vault.store.cas.ContentStore
    collector: Any = None  # vault.ingest.collector.CollectorClient
    directory: Any = None  # vault.directory.Directory, or None: users by login name
    event_id: str | None = None
    config: Any = None
