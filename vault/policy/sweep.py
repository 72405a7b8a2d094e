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
from vault.model import custodian_of, parse_time
from vault.model import now as utc_now
from vault.policy.holds import Hold, final_decision, holding
from vault.policy.rules import PURGE, ItemFacts, evaluate, rules_from_config
from vault.purge import purge_items


@dataclass
class SweepReport:
    now: str
    dry_run: bool
    purge: list[dict] = field(default_factory=list)  # {item, mailbox, rule, reason}
    held: list[dict] = field(default_factory=list)  # would purge, but a hold wins
    blobs_deleted: int = 0
    store: dict = field(default_factory=dict)


def facts_of(vault: Vault, row: dict, directory=None) -> ItemFacts:
    """What rules and holds see of an item; with a directory, the custodian's stable id,
    groups and aliases too (rules by LDAP group, holds written with a login)."""
    folder = vault.catalog.folder_name(row["mailbox_id"]) or row["mailbox_id"]
    login = custodian_of(folder) or ""
    user, groups, aliases = login, (), ()
    if directory is not None and login:
        found = directory.resolve(login)  # never raises: name-only when LDAP is down
        user, groups, aliases = found.id, found.groups, (found.login, login, *found.mails)
    return ItemFacts(
        item_id=row["item"],
        folder=folder,
        user=user,
        groups=tuple(groups),
        user_aliases=tuple(aliases),
        internal_date=parse_time(row["internal_date"] or row["appended_at"]),
        expunged_at=parse_time(row["expunged_at"]) if row["expunged_at"] else None,
        flags=tuple(row["flags"]),
        blob=row["blob"],
    )


def directory_of(vault: Vault):
    """The configured LDAP directory, or None when [ldap] url is empty."""
    from vault.directory import Directory

    directory = Directory.from_config(vault.config)
    return directory if directory.configured else None


def holds_of(vault: Vault) -> list[Hold]:
    return [Hold.from_data(d) for d in vault.catalog.hold_data()]


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
    when = now or utc_now()
    query_matcher = query_matcher or index_matcher(vault)  # holds with --query
    rules = rules_from_config(vault.config)
    holds = [h for h in holds_of(vault) if h.active()]
    report = SweepReport(when.isoformat(), dry_run)
    items = vault.catalog.all_items()
    purged: set[str] = set()
    directory = directory_of(vault)
    for row in items:
        facts = facts_of(vault, row, directory)
        decision = evaluate(facts, rules, when)
        if decision.action != PURGE:
            continue
        if decision.rule is None:  # evaluate() names the rule of every PURGE
            raise RuntimeError(f"item {row['item']}: a purge decision without its rule")
        final = final_decision(decision, holding(facts, holds, query_matcher))
        entry = {
            "item": row["item"],
            "mailbox": facts.folder,
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
