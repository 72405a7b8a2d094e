"""in:/custodian: answered per archived item, through the catalog.

The index holds one document per content (blob); folders and custodians live in the catalog,
because they change (renames, moves) while the content does not. A query is about archived
items: a blob is a hit when at least one of its items satisfies the whole query in that item's
folder, and only such items are reported. So ``custodian:jane in:Sent`` is jane's Sent (not
"in somebody's Sent and anywhere of jane's"), and ``--custodian jane`` never reports john's copy
of the same message.

How: folders are grouped by what the query becomes in them once its location clauses are
replaced by true/false (``bind``); each group contributes "its blobs AND that content query",
the blobs as a term set on the numeric ``key`` field. Folders no clause names share one group
whose blobs are never listed (that would be the whole archive): a blob belongs to it unless
all its items sit in named folders, a set no bigger than the named folders' blobs, and computed
only when that group can match at all (``-in:Junk``, ``money OR custodian:jane``; not
``custodian:jane money``).

A query about the received date (before:/after:/on:) is answered per item: each copy's folder
truths and date truths bind the query, and the copies whose content satisfies what is left are
the hits (``_by_item``), at the cost of reading the candidate copies from the catalog (only the
custodian's or folder's when the query requires one).

The common case, one group and nothing elsewhere (``custodian:jane money``, ``in:Sent``), may
instead walk the content's hits newest first and keep those whose key is in the folders,
when that is cheaper than the term set (it usually is when only the first rows are wanted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet

import tantivy

from vault.dates import RECEIVED, received_key
from vault.index.query import (
    And,
    Node,
    When,
    Where,
    bind,
    compile_query,
    location_clauses,
    received_clauses,
)
from vault.index.schema import blob_key
from vault.model import custodian_of, folder_forms, format_time

# (tantivy query, limit) -> the blobs it finds
Run = Callable[[tantivy.Query, int], set[str]]
# A folder group's blob keys, as FolderKeys holds them
Keys = AbstractSet[int]
# Scope._plan: one Tantivy query, or (content query, folder keys, content matches) to walk
Plan = tantivy.Query | tuple[tantivy.Query, Keys, int]

# What one more element costs, measured at 100k documents: a key in a Tantivy term set ~3 us,
# a content hit walked newest first and checked against the folders' keys ~0.35 us.
TERM_SET_COST, WALK_COST = 8, 1


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
        elif any(f == v or f.endswith("/" + v) for f in folder_forms(n)) or (
            low == "inbox" and custodian_of(n) and n.count("/") == 1
        ):
            out.add(mailbox_id)
    return out


class FolderKeys:
    """Each folder's blob keys, remembered by a long-lived reader while the folder's version
    (the last ledger entry about it or its items) is unchanged: resolving a big custodian
    through SQLite costs ~1 us an item, checking a version ~20 us a folder. Least recently
    used folders go first once ``max_keys`` are held (~50 bytes each)."""

    def __init__(self, max_keys: int = 1_000_000):
        self.max_keys = max_keys
        self._held: OrderedDict[tuple[str, str], tuple[int, frozenset[int]]] = OrderedDict()
        self._size = 0

    def keys(self, catalog, mailboxes: Iterable[str]) -> set[int] | frozenset[int]:
        versions = catalog.folder_versions(mailboxes)
        sets = []
        for mailbox, version in versions.items():
            slot = (str(catalog.path), mailbox)
            held = self._held.get(slot)
            if held is None or held[0] != version:
                held = (version, frozenset(blob_key(b) for b in catalog.blobs_in([mailbox])))
                self._put(slot, held)
            self._held.move_to_end(slot)
            sets.append(held[1])
        return sets[0] if len(sets) == 1 else set().union(*sets)

    def _put(self, slot: tuple[str, str], held: tuple[int, frozenset[int]]) -> None:
        old = self._held.pop(slot, None)
        self._size -= len(old[1]) if old else 0
        self._held[slot] = held
        self._size += len(held[1])
        while self._size > self.max_keys and len(self._held) > 1:
            _, (_, dropped) = self._held.popitem(last=False)
            self._size -= len(dropped)


class Scope:
    """One parsed query against the catalog as it is now."""

    def __init__(self, node: Node, catalog, schema, folder_keys: FolderKeys | None = None):
        self.catalog = catalog
        self.schema = schema
        self.folder_keys = folder_keys or FolderKeys(0)
        self.node = node
        self.clauses = location_clauses(node)
        self.received = received_clauses(node)
        self._matched: dict[str, list[dict]] | None = None  # per item (received dates): blob -> hits
        self.default = bind(node, dict.fromkeys(self.clauses, False))  # folders no clause names
        self.named: dict[str, Node | bool] = {}  # mailboxID -> the query there
        self._sets: list[set[str]] = []
        if self.clauses:
            names = catalog.folder_names()
            sets = self._sets = [matching_folders(names, c.kind, c.value) for c in self.clauses]
        if self.clauses and not self.received:
            bound: dict[tuple, Node | bool] = {}
            for mailbox in set().union(*sets):
                truth = tuple(mailbox in s for s in sets)
                if truth not in bound:
                    bound[truth] = bind(node, dict(zip(self.clauses, truth)))
                self.named[mailbox] = bound[truth]

    def _blobs(self, blobs: Iterable[str]) -> tantivy.Query:
        wanted = sorted(blobs)
        return (
            tantivy.Query.term_set_query(self.schema, "blob", wanted)
            if wanted
            else tantivy.Query.empty_query()
        )

    def _keys(self, keys: Keys) -> tantivy.Query:
        return (
            tantivy.Query.term_set_query(self.schema, "key", sorted(keys))
            if keys
            else tantivy.Query.empty_query()
        )

    def _both(self, a: tantivy.Query, b: tantivy.Query) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, a), (tantivy.Occur.Must, b)])

    def _groups(self) -> dict[Node | bool, list[str]]:
        """What the query is in the named folders -> those folders (where it can match)."""
        groups: dict[Node | bool, list[str]] = {}
        for mailbox, bound in self.named.items():
            if bound is not False:
                groups.setdefault(bound, []).append(mailbox)
        return groups

    def _folder_keys(self, mailboxes: Iterable[str]) -> set[int] | frozenset[int]:
        return self.folder_keys.keys(self.catalog, mailboxes)

    def _by_item(self, searcher: tantivy.Searcher) -> dict[str, list[dict]]:
        """blob -> its copies the query finds, each copy's folder and received date bound."""
        if self._matched is not None:
            return self._matched
        required, since, until = self._required()
        rows = self.catalog.copies(required, since, until)
        bounds: dict[tuple, Node | bool] = {}
        kept: list[tuple[dict, Node | bool]] = []
        checks: dict[Node, set[str]] = {}
        cuts = [(format_time(c.at), c.op == "after") for c in self.received]
        for row in rows:
            when = received_key(row)
            truth = tuple(row["mailbox_id"] in s for s in self._sets) + tuple(
                when >= at if after else when < at for at, after in cuts
            )
            if truth not in bounds:
                bounds[truth] = bind(self.node, dict(zip([*self.clauses, *self.received], truth)))
            bound = bounds[truth]
            if bound is False:
                continue
            kept.append((row, bound))
            if bound is not True:
                checks.setdefault(bound, set()).add(row["blob"])
        satisfied = {
            bound: {
                searcher.doc(a).get_first("blob")
                for _, a in searcher.search(
                    self._both(compile_query(bound, self.schema), self._blobs(blobs)), max(len(blobs), 1)
                ).hits
            }
            for bound, blobs in checks.items()
        }
        matched: dict[str, list[dict]] = {}
        for row, bound in kept:
            if isinstance(bound, bool) or row["blob"] in satisfied[bound]:
                matched.setdefault(row["blob"], []).append(row)
        self._matched = matched
        return matched

    def _required(self) -> tuple[set[str] | None, str | None, str | None]:
        """What a copy must be for the query to find it, as the whole query needs it: in these
        folders (a custodian: or in:; None: anywhere), received in [since, until) (after:,
        before:, on:; vault time strings, None: open)."""
        parts, found = self._conjuncts(self.node), None
        since = until = None
        for part in parts:
            if isinstance(part, Where):
                folders = self._sets[self.clauses.index(part)]
                found = set(folders) if found is None else found & folders
            elif isinstance(part, When) and part.basis == RECEIVED:
                at = format_time(part.at)
                if part.op == "after":
                    since = at if since is None else max(since, at)
                else:
                    until = at if until is None else min(until, at)
        return found, since, until

    def _conjuncts(self, node: Node) -> list[Node]:
        return [p for n in node.nodes for p in self._conjuncts(n)] if isinstance(node, And) else [node]

    def count(self, searcher: tantivy.Searcher) -> int:
        """How many contents match."""
        if self.received:
            return count_matches(searcher, self._blobs(self._by_item(searcher)))
        plan = self._plan(searcher, None)
        if isinstance(plan, tantivy.Query):
            return count_matches(searcher, plan)
        return len(_walk(searcher, *plan, None))

    def find(self, searcher: tantivy.Searcher, limit: int) -> list:
        """DocAddresses of the first ``limit`` matching contents, newest first."""
        plan = self._blobs(self._by_item(searcher)) if self.received else self._plan(searcher, limit)
        if isinstance(plan, tantivy.Query):
            return [
                a for _, a in searcher.search(plan, max(limit, 1), count=False, order_by_field="date").hits
            ][:limit]
        return _walk(searcher, *plan, limit)

    def _plan(self, searcher: tantivy.Searcher, limit: int | None) -> Plan:
        """A Tantivy query, or (content query, folder keys, its matches) to walk the content's
        hits newest first keeping those in the folders: for one group of folders, when that
        costs less than a term set of the folders' keys."""
        if not self.clauses:
            return compile_query(self.default, self.schema)
        groups = self._groups()
        if self.default is not False or len(groups) != 1:
            return self.query()
        ((bound, mailboxes),) = groups.items()  # custodian:jane ..., in:Sent ...
        keys = self._folder_keys(mailboxes)
        if not keys:
            return tantivy.Query.empty_query()
        content = compile_query(bound, self.schema)
        matches = searcher.num_docs if bound is True else count_matches(searcher, content)
        walked = matches if limit is None else min(matches, _first_chunk(limit, len(keys), searcher.num_docs))
        if walked * WALK_COST > len(keys) * TERM_SET_COST:
            return self._both(content, self._keys(keys))
        return content, keys, matches

    def query(self) -> tantivy.Query:
        """The whole query as one Tantivy query (any number of folder groups)."""
        Q, Occur = tantivy.Query, tantivy.Occur
        if self.received:
            raise TypeError("a query by received date is answered per item (_by_item)")
        if not self.clauses:
            return compile_query(self.default, self.schema)
        parts = []
        for bound, mailboxes in self._groups().items():
            keys = self._folder_keys(mailboxes)
            if keys:
                parts.append(self._both(compile_query(bound, self.schema), self._keys(keys)))
        if self.default is not False:
            content = compile_query(self.default, self.schema)
            only_named = {blob_key(b) for b in self._only_in(set(self.named))}
            if only_named:
                content = Q.boolean_query([(Occur.Must, content), (Occur.MustNot, self._keys(only_named))])
            parts.append(content)
        if not parts:
            return Q.empty_query()
        return parts[0] if len(parts) == 1 else Q.boolean_query([(Occur.Should, p) for p in parts])

    def _only_in(self, mailboxes: set[str]) -> set[str]:
        """Blobs every (not purged) item of which sits in these folders."""
        if not mailboxes:
            return set()
        items = self.catalog.items_of_blobs(self.catalog.blobs_in(mailboxes))
        return {
            blob
            for blob, rows in items.items()
            if all(r["mailbox_id"] in mailboxes for r in rows if not r["purged_at"])
        }

    def items(self, blobs: list[str], run: Run) -> dict[str, list[dict]]:
        """blob -> its items (not purged) that satisfy the query, in the order archived."""
        if self._matched is not None:
            found = {r["item"] for b in blobs for r in self._matched.get(b, [])}
            rows = self.catalog.items_of_blobs(blobs)
            return {b: [r for r in rows.get(b, []) if r["item"] in found] for b in blobs}
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
        satisfied = {
            bound: run(self._both(compile_query(bound, self.schema), self._blobs(found)), len(found))
            for bound, found in checks.items()
        }

        def keep(blob: str, r: dict) -> bool:
            bound = self.named.get(r["mailbox_id"], self.default)
            return bound if isinstance(bound, bool) else blob in sure or blob in satisfied[bound]

        return {blob: [r for r in items if keep(blob, r)] for blob, items in live.items()}


def _first_chunk(limit: int, folder_docs: int, all_docs: int) -> int:
    """Content hits to walk for ``limit`` in the folders, if the folders hold a random share."""
    share = max(folder_docs / max(all_docs, 1), 1e-9)
    return max(2 * limit, int(1.5 * limit / share))


def count_matches(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents ``query`` matches (Tantivy counts them; one hit is collected)."""
    # SearchResult.count exists (tantivy-py's search(count=True)); its stub omits it
    return searcher.search(query, 1, count=True).count  # type: ignore[attr-defined]


def _walk(
    searcher: tantivy.Searcher, content: tantivy.Query, keys: Keys, matches: int, limit: int | None
) -> list:
    """The content's hits newest first, those whose key is one of the folders' (``limit`` of
    them, or all). Chunks grow 4x: a chunk re-collects the hits before it, at most 1/3 more."""
    kept: list = []
    offset = 0
    chunk = matches if limit is None else min(matches, _first_chunk(limit, len(keys), searcher.num_docs))
    while offset < matches and (limit is None or len(kept) < limit):
        found = [
            a
            for _, a in searcher.search(
                content, chunk, count=False, offset=offset, order_by_field="date"
            ).hits
        ]
        if not found:
            break
        kept += [a for a, k in zip(found, searcher.fast_field_values("key", found)) if k in keys]
        offset += len(found)
        chunk *= 4
    return kept if limit is None else kept[:limit]
