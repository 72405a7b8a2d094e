"""Searching the archive: the query run against the index, scoped per archived copy through
the catalog and to what the caller may read (vault/access.py), and recorded in the audit
trail (who searched for what, within which scope, how many hits) before the hits are
returned, so no caller (the CLI, an API) can search unaudited."""

from __future__ import annotations

from dataclasses import dataclass

from vault.access import MailScope
from vault.audit import record_audit
from vault.entries import Kind
from vault.identity import REVIEWER, USER
from vault.index.copies import describe_copies
from vault.model import custodian_of
from vault.recording import ensure_recordable


@dataclass
class SearchResult:
    total: int
    hits: list
    audit: str  # "recorded" in the ledger (by this process or the vault service)
    custodian: str | None = None  # the custodian searched (a user's own, whatever they asked)
    scope: list[str] | None = None  # a reviewer's custodians, recorded with the search


@dataclass
class Found:
    total: int
    hits: list
    custodian: str | None
    scope: list[str] | None  # the custodians a reviewer's search was confined to


def find(
    vault,
    index,
    query: str,
    *,
    scope: MailScope | None = None,
    custodian: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
    at: str | None = None,
) -> Found:
    """``limit`` hits of ``query`` (None: all) from the ``offset``-th on, within ``scope``
    (None: everything), and how many there are in all; ``is:`` clauses judge the flags as at
    ``at`` (None: now). A user's search is of their own mail; a reviewer's is confined to
    their matters' custodians and, item by item, to the matters' date ranges (internal
    dates). Forbidden when ``custodian`` is outside the scope; QuerySyntaxError for a bad
    query."""
    action = f"search {custodian}'s mail" if custodian else "search mail"
    if scope is not None and scope.role == USER:
        if custodian is not None:
            scope.require_custodian(custodian, action)
        custodian = scope.caller.login
    if scope is None or scope.role != REVIEWER:
        total = index.count(query, vault.catalog, custodian, at=at)
        wanted = max(1, total) if limit is None else offset + limit
        hits = index.search(query, vault.catalog, custodian=custodian, limit=wanted, at=at)
        return Found(total, hits[offset:], custodian, None)
    if custodian is not None:
        scope.require_custodian(custodian, action)
    within = [custodian] if custodian else scope.names() or []
    confined = f"({query}) ({' OR '.join(f'custodian:{c}' for c in within)})"
    every = max(1, index.count(confined, vault.catalog, at=at))
    everything = index.search(confined, vault.catalog, limit=every, at=at)
    hits = [h for h in (_within(vault, scope, h) for h in everything) if h is not None]
    page = hits[offset:] if limit is None else hits[offset : offset + limit]
    return Found(len(hits), page, custodian, within)


def _within(vault, scope: MailScope, hit):
    """``hit`` with only the items ``scope`` may read (None when none is left)."""
    rows = [r for r in (vault.catalog.item(i) for i in hit.item_ids) if r is not None]
    rows = [r for r in rows if scope.item(vault, r)]
    if not rows:
        return None
    hit.item_ids = [r["item"] for r in rows]
    hit.folders = sorted({r["mailbox"] or r["mailbox_id"] for r in rows})
    hit.custodians = sorted({c for c in (custodian_of(r["mailbox"]) for r in rows) if c})
    describe_copies(hit, rows)
    return hit


def search(
    vault,
    index,
    query: str,
    *,
    custodian: str | None = None,
    limit: int = 50,
    actor: str | None = None,
    scope: MailScope | None = None,
    offset: int = 0,
    at: str | None = None,
) -> SearchResult:
    """``limit`` hits of ``query`` from the ``offset``-th on (and how many there are in all),
    within ``scope``; ``is:`` as at ``at``.
    Raises QuerySyntaxError for a bad query, IndexOutdated/IndexBusy for an index it cannot
    use, Forbidden outside the scope, and Unrecorded when the search cannot be audited (then
    nothing is returned)."""
    ensure_recordable(vault)
    found = find(vault, index, query, scope=scope, custodian=custodian, limit=limit, offset=offset, at=at)
    how = record_audit(vault, Kind.SEARCH_RUN, actor=actor, data=search_data(query, found, scope))
    return SearchResult(found.total, found.hits, how, found.custodian, found.scope)


def search_data(query: str, found: Found, scope: MailScope | None) -> dict:
    """The ``search.run`` entry's data: the query, the custodian, the scope, the count."""
    data: dict = {"query": query, "custodian": found.custodian, "results": found.total}
    if found.scope is not None:
        data["scope"] = found.scope
    if scope is not None:
        data.update(scope.caller.audit_fields())
    return data
