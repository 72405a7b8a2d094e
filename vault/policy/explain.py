"""The text of ``vaultctl retention explain ITEM``: which rules match, which wins, why,
and which holds override it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from vault.policy.holds import Hold, QueryMatcher, final_decision, holding
from vault.policy.rules import ItemFacts, Rule, evaluate, show_time


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
    """``explain`` for archived item ``item_id`` with the vault's rules and active holds.
    LookupError for an unknown item; RulesError for rules that do not load."""
    from vault.policy.rules import rules_from_config
    from vault.policy.sweep import facts_of, holds_of

    row = vault.catalog.item(item_id)
    if row is None:
        raise LookupError(f"no item {item_id!r} in the archive")
    rules = rules_from_config(vault.config)
    return explain(facts_of(vault, row), rules, now, [h for h in holds_of(vault) if h.active()], shown=shown)
