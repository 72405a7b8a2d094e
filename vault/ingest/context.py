"""What a live-ingest handler receives and returns (docs/architecture.md 1.2).

A handler is ``handle(event: dict, ctx: HandlerContext) -> list[EntrySpec]``: it reads the
catalog, writes blobs to the store (idempotent puts), asks the collector for what the event
lacks, and returns the ledger entries to record. Whoever runs it (a worker, reconciliation,
a test) records them with ``Vault.record`` and commits. A handler that cannot proceed
raises ``Quarantine`` (the event is kept with the reason and never retried by itself) or
``Postpone`` (try again later, e.g. a Logout before its Login is archived).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vault.config import Config
    from vault.directory import Directory
    from vault.ingest.collector.client import CollectorClient
    from vault.store.cas import ContentStore
    from vault.store.catalog import Catalog


class Quarantine(Exception):
    """The event cannot be processed as it is: keep it, with this reason, for an operator."""


class Postpone(Exception):
    """Not now: the job goes back to the queue and is retried later."""


@dataclass
class HandlerContext:
    """What a handler may use: the catalog (read), the store (idempotent puts), the
    collector, the directory (None: users by login name), the event's id."""

    catalog: Catalog
    store: ContentStore
    collector: CollectorClient | None = None
    directory: Directory | None = None
    event_id: str | None = None
    config: Config | None = None
