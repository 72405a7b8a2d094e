"""Searching the archive: the query run against the index, scoped per archived copy through
the catalog, and recorded in the audit trail (who searched for what, how many hits) before
the hits are returned, so no caller (the CLI, an API) can search unaudited."""

from __future__ import annotations

from dataclasses import dataclass

from vault.audit import record_audit
from vault.entries import Kind
from vault.recording import ensure_recordable


@dataclass
class SearchResult:
    total: int
    hits: list
    audit: str  # "recorded" in the ledger, or "queued" with the broker


def search(
    vault, index, query: str, *, custodian: str | None = None, limit: int = 50, actor: str | None = None
) -> SearchResult:
    """The first ``limit`` hits of ``query`` (and how many there are in all). Raises
    QuerySyntaxError for a bad query, IndexOutdated/IndexBusy for an index it cannot use, and
    Unrecorded when the search cannot be audited (then nothing is returned)."""
    ensure_recordable(vault)
    total = index.count(query, vault.catalog, custodian)
    hits = index.search(query, vault.catalog, custodian=custodian, limit=limit)
    how = record_audit(
        vault, Kind.SEARCH_RUN, actor=actor, data={"query": query, "custodian": custodian, "results": total}
    )
    return SearchResult(total, hits, how)
