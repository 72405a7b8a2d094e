"""Hold and erasure queries answered by the search index, per archived item: a query with
``in:`` or ``custodian:`` matches the copies in those folders, not every copy of the content.

Holds err on the side of keeping: when the index cannot answer (no index yet, a query it
rejects), the hold applies to every item of its custodians and dates, as it did before the
index existed; the reason is logged.
"""

from __future__ import annotations

import logging

from vault.index.indexer import SearchIndex
from vault.index.query import QuerySyntaxError

log = logging.getLogger(__name__)


class IndexNotCurrent(ValueError):
    """The index cannot say what a query covers: behind the ledger, or documents lost."""


def matching_items(vault, query: str) -> set[str]:
    """Ids of every archived item (expunged included, purged not) the query finds. Raises
    FileNotFoundError without an index, QuerySyntaxError on a bad query, IndexNotCurrent
    when a reader's index is not known current (the cheap checks of vault/derived.py): a
    hold or an erasure never acts on fewer items than the ledger says the query finds."""
    if vault.index is not None:  # the writer's own: caught up when the vault opened
        return _matching(vault.index, vault, query)
    index = SearchIndex.of(vault.config)
    try:
        problem = index.state_problem(vault.ledger.size)
        if problem:
            raise IndexNotCurrent(
                f"{problem}: it cannot say what {query!r} covers ('vaultctl verify --repair' rebuilds it)"
            )
        return _matching(index, vault, query)
    finally:
        index.close()


def _matching(index: SearchIndex, vault, query: str) -> set[str]:
    total = index.count(query, vault.catalog)
    return {i for h in index.search(query, vault.catalog, limit=max(total, 1)) for i in h.item_ids}


def index_matcher(vault):
    """A ``QueryMatcher`` (vault/policy/holds.py) over the vault's index; one search per query."""
    answers: dict[str, set[str] | None] = {}

    def matches(query: str, item) -> bool:
        if query not in answers:
            try:
                answers[query] = matching_items(vault, query)
            except (FileNotFoundError, QuerySyntaxError, ValueError) as e:
                log.warning(
                    "hold query %r cannot be answered by the index (%s): the hold keeps "
                    "every item of its custodians",
                    query,
                    e,
                )
                answers[query] = None
        found = answers[query]
        return True if found is None else item.item_id in found

    return matches
