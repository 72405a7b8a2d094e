"""The text of ``vaultctl retention explain ITEM``: which rules match, which wins, why,
and which holds override it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from vault.policy.holds import Hold, QueryMatcher, final_decision, holding
from vault.policy.rules import ItemFacts, Rule, evaluate, show_time


def explain(
    item: ItemFacts,
    rules: Iterable[Rule],
    now: datetime,
    holds: Iterable[Hold] = (),
    query_matcher: QueryMatcher | None = None,
) -> str:
    rules = list(rules)
    decision = evaluate(item, rules, now)
    held = holding(item, holds, query_matcher)
    final = final_decision(decision, held)

    head = (
        f"item {item.item_id} in {item.folder!r}, custodian {item.user!r}, "
        f"internal date {show_time(item.internal_date)}"
    )
    if item.expunged_at is not None:
        head += f", expunged {show_time(item.expunged_at)}"
    lines = [head, "rules:" if rules else "rules: none defined"]
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
    if held:
        lines.append("holds:")
        for hold in held:
            lines.append(
                f"  {hold.matter}: {hold.reason} (owner {hold.owner}, placed {show_time(hold.created_at)})"
            )
    lines.append(f"decision: {final.action}: {final.reason}")
    return "\n".join(lines)
