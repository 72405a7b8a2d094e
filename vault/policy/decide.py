"""The one decision about an archived item: what retention says, which holds really cover
it, and so what a sweep does with it. ``retention sweep`` acts on it and ``retention explain``
prints it, so the two cannot disagree.

:class:`Policy` is the vault's rules, active holds, hold-query matcher (the search index,
vault/index/matcher.py) and directory, read once; :meth:`Policy.decide` decides one catalog
row. A hold counts only when it covers the item: its custodians, its dates (the received
date, vault/dates.py) and its query as the index answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vault.archive import Vault
from vault.dates import received
from vault.index.matcher import index_matcher
from vault.model import custodian_of, parse_time
from vault.policy.holds import Hold, QueryMatcher, final_decision, holding
from vault.policy.rules import Decision, ItemFacts, Rule, evaluate, rules_from_config


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
        internal_date=received(row),  # the received date (vault/dates.py)
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


@dataclass(frozen=True)
class Verdict:
    facts: ItemFacts
    retention: Decision  # what the rules alone say
    holds: tuple[Hold, ...]  # the active holds that cover the item
    final: Decision  # retention overruled by the holds: what a sweep does


@dataclass
class Policy:
    rules: list[Rule]
    holds: list[Hold]  # active
    matcher: QueryMatcher | None = None
    directory: object = None

    def facts(self, vault, row: dict) -> ItemFacts:
        return facts_of(vault, row, self.directory)

    def decide(self, facts: ItemFacts, now: datetime) -> Verdict:
        retention = evaluate(facts, self.rules, now)
        holds = tuple(holding(facts, self.holds, self.matcher))
        return Verdict(facts, retention, holds, final_decision(retention, holds))


def policy_of(vault, query_matcher: QueryMatcher | None = None) -> Policy:
    """The vault's policy now: rules (RulesError when they do not load), active holds, the
    index as the holds' query matcher, the directory when one is configured."""
    return Policy(
        rules_from_config(vault.config),
        [h for h in holds_of(vault) if h.active()],
        query_matcher or index_matcher(vault),
        directory_of(vault),
    )
