"""Data-subject erasure: purge a custodian's mail unless a hold forbids it, and certify it.

The certificate is a ledger entry naming what was erased (item ids and content hashes,
never content), who asked and when; a request that any active hold blocks is refused
with the blocking holds named, and nothing is changed.
"""

from __future__ import annotations

from vault.archive import Vault
from vault.entries import Kind
from vault.index.matcher import index_matcher, matching_items
from vault.policy.holds import holding
from vault.policy.sweep import facts_of, holds_of, purge_items


class ErasureRefused(Exception):
    def __init__(self, holds: list[str]):
        super().__init__("erasure refused: held by " + ", ".join(holds))
        self.holds = holds


def erase_custodian(
    vault: Vault, custodian: str | None = None, *, query: str | None = None, actor: str | None = None
) -> dict:
    """Erase the items of ``custodian``, or those whose content matches ``query`` (both:
    the custodian's items that match). The query is the search language (vault/index)."""
    if not custodian and not query:
        raise ValueError("an erasure needs a custodian or a query")
    holds = [h for h in holds_of(vault) if h.active()]
    matcher = index_matcher(vault)
    rows = vault.catalog.all_items()
    if custodian:
        rows = [r for r in rows if facts_of(vault, r).user.casefold() == custodian.casefold()]
    if query:  # a query the index cannot answer stops the erasure: erasing on a guess is not an option
        matching = matching_items(vault, query)
        rows = [r for r in rows if r["item"] in matching]
    blocking = sorted({h.matter for r in rows for h in holding(facts_of(vault, r), holds, matcher)})
    if blocking:
        raise ErasureRefused(blocking)
    who = " and ".join(x for x in (custodian and f"custodian {custodian}", query and f"query {query!r}") if x)
    why = {r["item"]: {"rule": None, "reason": f"erasure request for {who}"} for r in rows}
    store = purge_items(vault, rows, why, actor) if rows else {}
    certificate = {
        "custodian": custodian,
        "query": query,
        "items": [r["item"] for r in rows],
        "blobs": sorted({r["blob"] for r in rows}),
        "blobs_deleted": store.get("blobs", 0),
    }
    vault.record(Kind.ERASURE, actor=actor, data=certificate)
    vault.commit()
    return certificate
