"""Hold queries answered by the search index: does a held item's content match the query?

Holds err on the side of keeping: when the index cannot answer (no index yet, a query it
rejects), the hold applies to every item of its custodians and dates, as it did before the
index existed; the reason is logged.
"""
from __future__ import annotations

import logging

from vault.index.indexer import SearchIndex
from vault.index.query import QuerySyntaxError

log = logging.getLogger(__name__)


def index_matcher(vault):
    """A ``QueryMatcher`` (vault/policy/holds.py) over the vault's index; one search per query."""
    answers: dict[str, set[str] | None] = {}

    def index():
        if vault.index is not None:
            return vault.index
        return SearchIndex.open(vault.config.path("index"))

    def matches(query: str, item) -> bool:
        if query not in answers:
            try:
                idx = index()
                total = idx.count(query, vault.catalog)
                answers[query] = {h.blob for h in idx.search(query, vault.catalog, limit=max(total, 1))}
            except (FileNotFoundError, QuerySyntaxError, ValueError) as e:
                log.warning("hold query %r cannot be answered by the index (%s): the hold keeps "
                            "every item of its custodians", query, e)
                answers[query] = None
        found = answers[query]
        return True if found is None else item.blob in found

    return matches
