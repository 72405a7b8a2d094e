"""in:/custodian: answered per archived item, through the catalog.

The index holds one document per content (blob); folders and custodians live in the catalog,
because they change (renames, moves) while the content does not. A query is about archived
items: a blob is a hit when at least one of its items satisfies the whole query in that item's
folder, and only such items are reported. So ``custodian:jane in:Sent`` is jane's Sent (not
"in somebody's Sent and anywhere of jane's"), and ``--custodian jane`` never reports john's copy
of the same message.

How: folders are grouped by what the query becomes in them once its location clauses are
replaced by true/false (``bind``); each group contributes "its blobs AND that content query".
Folders no clause names share one group whose blobs are never listed (that would be the whole
archive): a blob belongs to it unless all its items sit in named folders, a set no bigger than
the named folders' blobs, and computed only when that group can match at all (``-in:Junk``,
``money OR custodian:jane``; not ``custodian:jane money``).
"""
from __future__ import annotations

from typing import Callable, Iterable

import tantivy

from vault.index.query import Node, Where, bind, compile_query, location_clauses
from vault.model import custodian_of

# (tantivy query, limit) -> the blobs it finds
Run = Callable[[tantivy.Query, int], set[str]]


def matching_folders(folder_names: Iterable[tuple[str, str]], kind: str, value: str) -> set[str]:
    """mailboxIDs that in:VALUE or custodian:VALUE stands for, over every name a folder had:
    in: matches a whole name or its last components (in:Sent, in:jane/Sent); in:INBOX also
    matches ``user/NAME``, which is NAME's INBOX."""
    out = set()
    v = value.strip().strip("/")
    low = v.lower()
    for mailbox_id, name in folder_names:
        n = name.replace(".", "/") if name.startswith("user.") else name
        if kind == "custodian":
            if custodian_of(n) == v:
                out.add(mailbox_id)
        elif n == v or n.endswith("/" + v) or (low == "inbox" and custodian_of(n) and n.count("/") == 1):
            out.add(mailbox_id)
    return out


class Scope:
    """One parsed query against the catalog as it is now."""

    def __init__(self, node: Node, catalog, schema):
        self.catalog = catalog
        self.schema = schema
        self.clauses = location_clauses(node)
        self.default = bind(node, dict.fromkeys(self.clauses, False))  # folders no clause names
        self.named: dict[str, Node | bool] = {}  # mailboxID -> the query there
        if self.clauses:
            names = catalog.folder_names()
            sets = [matching_folders(names, c.kind, c.value) for c in self.clauses]
            bound: dict[tuple, Node | bool] = {}
            for mailbox in set().union(*sets):
                truth = tuple(mailbox in s for s in sets)
                if truth not in bound:
                    bound[truth] = bind(node, dict(zip(self.clauses, truth)))
                self.named[mailbox] = bound[truth]

    def _blobs(self, blobs: Iterable[str]) -> tantivy.Query:
        wanted = sorted(blobs)
        return tantivy.Query.term_set_query(self.schema, "blob", wanted) if wanted else tantivy.Query.empty_query()

    def _both(self, a: tantivy.Query, b: tantivy.Query) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, a), (tantivy.Occur.Must, b)])

    def query(self) -> tantivy.Query:
        Q, Occur = tantivy.Query, tantivy.Occur
        if not self.clauses:
            return compile_query(self.default, self.schema)
        groups: dict[Node | bool, list[str]] = {}
        for mailbox, bound in self.named.items():
            if bound is not False:
                groups.setdefault(bound, []).append(mailbox)
        parts = []
        for bound, mailboxes in groups.items():
            blobs = self.catalog.blobs_in(mailboxes)
            if blobs:
                parts.append(self._both(compile_query(bound, self.schema), self._blobs(blobs)))
        if self.default is not False:
            content = compile_query(self.default, self.schema)
            only_named = self._only_in(set(self.named))
            if only_named:
                content = Q.boolean_query([(Occur.Must, content), (Occur.MustNot, self._blobs(only_named))])
            parts.append(content)
        if not parts:
            return Q.empty_query()
        return parts[0] if len(parts) == 1 else Q.boolean_query([(Occur.Should, p) for p in parts])

    def _only_in(self, mailboxes: set[str]) -> set[str]:
        """Blobs every (not purged) item of which sits in these folders."""
        if not mailboxes:
            return set()
        items = self.catalog.items_of_blobs(self.catalog.blobs_in(mailboxes))
        return {blob for blob, rows in items.items()
                if all(r["mailbox_id"] in mailboxes for r in rows if not r["purged_at"])}

    def items(self, blobs: list[str], run: Run) -> dict[str, list[dict]]:
        """blob -> its items (not purged) that satisfy the query, in the order archived."""
        rows = self.catalog.items_of_blobs(blobs)
        live = {b: [r for r in rows.get(b, []) if not r["purged_at"]] for b in blobs}
        if not self.clauses:
            return live
        checks: dict[Node, set[str]] = {}
        sure: set[str] = set()
        for blob, items in live.items():
            bounds = {self.named.get(r["mailbox_id"], self.default) for r in items} - {False}
            content = [b for b in bounds if not isinstance(b, bool)]
            if len(content) == 1 and len(bounds) == 1:
                sure.add(blob)  # a hit, and only this one query could have made it one
                continue
            for bound in content:
                checks.setdefault(bound, set()).add(blob)
        satisfied = {bound: run(self._both(compile_query(bound, self.schema), self._blobs(found)), len(found))
                     for bound, found in checks.items()}

        def keep(blob: str, r: dict) -> bool:
            bound = self.named.get(r["mailbox_id"], self.default)
            return bound if isinstance(bound, bool) else blob in sure or blob in satisfied[bound]

        return {blob: [r for r in items if keep(blob, r)] for blob, items in live.items()}
