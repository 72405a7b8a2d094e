"""The text of ``vaultctl retention explain ITEM``: which rules match, which wins, why,
which holds really cover it, and so what a sweep does, from the one decision a sweep acts on
(vault/policy/decide.py); for an item a sweep or an erasure already purged, which of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo

from vault import dates
from vault.policy.decide import Policy, Verdict, policy_of
from vault.policy.holds import Hold, QueryMatcher, final_decision
from vault.policy.rules import ItemFacts, Rule, show_time


def explain(
    item: ItemFacts,
    rules: Iterable[Rule],
    now: datetime,
    holds: Iterable[Hold] = (),
    query_matcher: QueryMatcher | None = None,
    shown: Callable[[Hold], bool] | None = None,
) -> str:
    """The explanation; ``shown`` says which holds the reader may see by name (None: all):
    the others count, and are named as "another hold"."""
    policy = Policy(list(rules), [h for h in holds if h.active()], query_matcher)
    return render(policy.decide(item, now), policy.rules, shown)


def _head(item: ItemFacts, zone: tzinfo) -> str:
    head = (
        f"item {item.item_id} in {item.folder!r}, custodian {item.user!r}, "
        f"received {dates.show(item.internal_date, zone)}"
    )
    if item.expunged_at is not None:
        head += f", expunged {dates.show(item.expunged_at, zone)}"
    return head


def render(
    verdict: Verdict, rules: list[Rule], shown: Callable[[Hold], bool] | None = None, zone: tzinfo = UTC
) -> str:
    item, decision, final = verdict.facts, verdict.retention, verdict.final
    held = list(verdict.holds)
    lines = [_head(item, zone), "rules:" if rules else "rules: none defined"]
    for rule in rules:
        why_not = rule.why_not(item)
        origin = f" [{rule.source}]" if rule.source else ""
        if why_not is None:
            mark = "  <- wins" if rule is decision.rule else ""
            lines.append(
                f"  + {rule.name}: {rule.describe()}, ends {show_time(rule.ends_at(item))}{origin}{mark}"
            )
        else:
            lines.append(f"  - {rule.name}: does not match: {why_not}{origin}")
    named = [h for h in held if shown is None or shown(h)]
    if held:
        lines.append("holds:")
        for hold in named:
            lines.append(
                f"  {hold.matter}: {hold.reason} (owner {hold.owner}, placed {show_time(hold.created_at)})"
            )
        if len(named) < len(held):
            lines.append(
                f"  {len(held) - len(named)} other hold(s) (shown to admins, auditors and their reviewers)"
            )
    if len(named) == len(held):
        lines.append(f"decision: {final.action}: {final.reason}")
    elif named:
        others = len(held) - len(named)
        lines.append(
            f"decision: {final.action}: {final_decision(decision, named).reason} (and {others} other hold(s))"
        )
    else:
        lines.append(
            f"decision: {final.action}: on hold; without the hold: {decision.action}: {decision.reason}"
        )
    return "\n".join(lines)


def explain_item(vault, item_id: str, now: datetime, shown: Callable[[Hold], bool] | None = None) -> str:
    """``explain`` for archived item ``item_id`` with the vault's rules and active holds, as
    a sweep at ``now`` decides it. LookupError for an unknown item; RulesError for rules
    that do not load."""
    from vault.purge import describe_purge

    row = vault.catalog.item(item_id)
    if row is None:
        raise LookupError(f"no item {item_id!r} in the archive")
    zone = dates.site_zone(vault.config)
    policy = policy_of(vault)
    facts = policy.facts(vault, row)
    if row.get("purged_at"):
        purge = vault.catalog.purges([item_id]).get(item_id)
        how = describe_purge(purge) if purge else f"purged ({row['purged_at']})"
        verb = "erased" if purge and purge["how"] == "erasure" else "purged"
        return "\n".join(
            [
                _head(facts, zone),
                f"gone: {how}; its content is deleted, no rule or hold applies",
                f"decision: {verb}: {how}",
            ]
        )
    return render(policy.decide(facts, now), policy.rules, shown, zone)
