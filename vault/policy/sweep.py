"""Retention sweeps: decide per item, purge what retention allows and no hold forbids.

Each purge is a ledger entry (rule, reason, blob); a blob leaves the store only when no
item that references it is still retained or held. ``now`` is injectable so tests and
what-if runs move through retention periods without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vault.archive import Vault
from vault.index.matcher import index_matcher
from vault.model import now as utc_now
from vault.policy.decide import facts_of, holds_of, policy_of
from vault.policy.holds import holding
from vault.policy.rules import PURGE
from vault.purge import purge_items


@dataclass
class SweepReport:
    now: str
    dry_run: bool
    purge: list[dict] = field(default_factory=list)  # {item, mailbox, rule, reason}
    held: list[dict] = field(default_factory=list)  # would purge, but a hold wins
    blobs_deleted: int = 0
    store: dict = field(default_factory=dict)


def held_blobs(vault: Vault, query_matcher=None) -> set[str]:
    holds = [h for h in holds_of(vault) if h.active()]
    if not holds:
        return set()
    query_matcher = query_matcher or index_matcher(vault)
    return {r["blob"] for r in vault.catalog.all_items() if holding(facts_of(vault, r), holds, query_matcher)}


def sync_storage_holds(vault: Vault) -> dict:
    """Mirror the ledger's holds onto the store's own legal-hold flags (S3 Object Lock)."""
    return vault.store.set_legal_holds(held_blobs(vault))


def sweep(
    vault: Vault,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    query_matcher=None,
) -> SweepReport:
    """Purge what the one decision (vault/policy/decide.py, which ``retention explain``
    prints) says to purge at ``now``."""
    when = now or utc_now()
    policy = policy_of(vault, query_matcher)  # holds with --query: the index
    report = SweepReport(when.isoformat(), dry_run)
    items = vault.catalog.all_items()
    purged: set[str] = set()
    for row in items:
        verdict = policy.decide(policy.facts(vault, row), when)
        decision, final = verdict.retention, verdict.final
        if decision.action != PURGE:
            continue
        if decision.rule is None:  # evaluate() names the rule of every PURGE
            raise RuntimeError(f"item {row['item']}: a purge decision without its rule")
        entry = {
            "item": row["item"],
            "mailbox": verdict.facts.folder,
            "how": "retention",
            "rule": decision.rule.name,
            "reason": final.reason,
        }
        if final.action != PURGE:
            report.held.append({**entry, "holds": list(final.held_by)})
            continue
        report.purge.append(entry)
        purged.add(row["item"])
    if dry_run or not purged:
        return report
    report.store = purge_items(
        vault, [r for r in items if r["item"] in purged], {e["item"]: e for e in report.purge}, actor
    )
    report.blobs_deleted = report.store.get("blobs", 0)
    return report
