"""``is:flagged``, ``is:seen``, ``is:deleted``: about an archived copy's flags at one time
(the search's ``--at``, default now), answered per item through the catalog's flag history.

Like ``in:`` (scope.py), a flag is not about the content: two copies of one message may be
flagged differently, and only the copies that satisfy the whole query are reported. How: each
assignment of true/false to the query's flag clauses (at most 2^3, one per flag named) makes a
query without them (``bind``); its hits, every copy of each, are kept where that copy's flags
at the time are exactly that assignment. The hits of all assignments are merged, newest first.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from vault.index.copies import describe_copies
from vault.index.query import Is, Node, bind, clauses
from vault.model import custodian_of


def flag_clauses(node: Node) -> list[Is]:
    """The is: clauses of a query, each once, in order."""
    return clauses(node, lambda n: isinstance(n, Is))


def search(
    node: Node, clauses: list[Is], run: Callable[[Node | bool], list], catalog, at: str | None
) -> list:
    """Every hit of ``node`` (its ``is:`` clauses judged per copy, flags as at ``at``, None:
    now), newest first; ``run(query)`` gives every hit of a query without is: clauses."""
    flags: dict[str, frozenset[str]] = {}

    def state(item: str) -> tuple[bool, ...]:
        if item not in flags:
            flags[item] = frozenset(catalog.flags_at(item, at) or ())
        return tuple(c.flag in flags[item] for c in clauses)

    merged: dict[str, Any] = {}
    for truth in itertools.product((False, True), repeat=len(clauses)):
        bound = bind(node, dict(zip(clauses, truth)))
        if bound is False:
            continue
        for hit in run(bound):
            items = [i for i in hit.item_ids if state(i) == truth]
            if not items:
                continue
            kept = merged.setdefault(hit.blob, hit)
            if kept is hit:
                hit.item_ids = []
            kept.item_ids += [i for i in items if i not in kept.item_ids]
    hits = list(merged.values())
    for hit in hits:
        _relocate(hit, catalog)
    # newest first, as the index orders its hits (a message without a Date last)
    return sorted(hits, key=lambda h: h.date or "", reverse=True)


def _relocate(hit, catalog) -> None:
    """The hit's folders, custodians and what it says of its copies, from the copies kept."""
    rows = [r for r in (catalog.item(i) for i in hit.item_ids) if r is not None]
    hit.folders = sorted({r["mailbox"] or r["mailbox_id"] for r in rows})
    hit.custodians = sorted({c for c in (custodian_of(r["mailbox"]) for r in rows) if c})
    describe_copies(hit, rows)
