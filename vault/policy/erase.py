"""Data-subject erasure: purge a custodian's mail unless a hold forbids it, and certify it.

The certificate is a ledger entry naming what was erased (item ids and content hashes,
never content), who asked and when; a request that any active hold blocks is refused
with the blocking holds named, and nothing is changed.
"""
from __future__ import annotations

from vault.archive import Vault
from vault.model import Kind
from vault.policy.holds import holding
from vault.policy.sweep import facts_of, holds_of, purge_items


class ErasureRefused(Exception):
    def __init__(self, holds: list[str]):
        super().__init__("erasure refused: held by " + ", ".join(holds))
        self.holds = holds


def erase_custodian(vault: Vault, custodian: str, *, actor: str | None = None) -> dict:
    holds = [h for h in holds_of(vault) if h.active()]
    rows = [r for r in vault.catalog.all_items() if facts_of(vault, r).user.casefold() == custodian.casefold()]
    blocking = sorted({h.matter for r in rows for h in holding(facts_of(vault, r), holds)})
    if blocking:
        raise ErasureRefused(blocking)
    why = {r["item"]: {"rule": None, "reason": f"erasure request for {custodian}"} for r in rows}
    store = purge_items(vault, rows, why, actor) if rows else {}
    certificate = {"custodian": custodian, "items": [r["item"] for r in rows],
                   "blobs": sorted({r["blob"] for r in rows}), "blobs_deleted": store.get("blobs", 0)}
    vault.record(Kind.ERASURE, actor=actor, data=certificate)
    vault.commit()
    return certificate
