"""Retention rules: the TOML rule language and the decision for one item (docs/architecture.md 1.9).

Rule files live in one directory (``[policy] rules_path``, default ``policies/`` under the
vault home); every ``*.toml`` file there holds any number of ``[[rule]]`` tables::

    [[rule]]
    name = "junk"                      # unique across all files; [A-Za-z0-9_.-]
    description = "Spam is not a record"
    purge_after = "30d"                # or keep_for = "7y"; exactly one of the two
    basis = "internal_date"            # or "expunged": age counted from the expunge
    [rule.match]                       # required; all given keys must match
    folders = ["user/*/Junk/**"]       # globs: * within one level, ** across levels
    users = ["jane", "jane@example.org"]
    groups = ["legal"]                 # LDAP groups of the item's custodian
    flags = ["\\Deleted", "$Junk"]     # any one of these flags
    junk = true                        # folder (or a parent) named Junk, Spam, ...

    [[rule]]
    name = "deleted"
    purge_after = "90d"
    basis = "expunged"
    match = "all"                      # every item: said explicitly (or [rule.match] all = true)

Matching. Inside one key the values are alternatives (any folder pattern, any user...);
different keys must all match. A rule that matches every item must say so with
``match = "all"`` (or, as before, ``all = true`` alone in ``[rule.match]``): a rule
without a match, or with an empty ``[rule.match]``, is refused when the rules are loaded,
so a forgotten or misspelt table cannot make a purge rule silently cover the whole archive. Folder
names use ``/`` as the hierarchy separator (Cyrus with ``unixhierarchysep: yes``) and match
case-sensitively (a user's INBOX, Cyrus's ``user/jane``, also as ``user/jane/INBOX``); users, groups and flags match case-insensitively. A rule with
``basis = "expunged"`` only matches items that have been expunged: the age it counts has
not started for an item still in its folder.

Actions. ``keep_for`` retains an item at least that long and then does nothing by
itself; ``purge_after`` makes the item eligible for purging once that long has passed.

Conflicts (the Microsoft Purview principles, made deterministic):

1. Every matching rule yields an end date (its basis time plus its duration); the rule
   with the **latest end date wins** (longest retention).
2. At the same end date a ``keep_for`` rule beats a ``purge_after`` rule, and among rules
   of the same action the smaller name wins (plain string order).
3. Retention wins over deletion: an item is purged only when at least one matching rule
   says ``purge_after``, and then not before the winner's end date. So ``keep_for 7y`` plus
   ``purge_after 30d`` keeps the item seven years and purges it then, while
   ``purge_after 30d`` alone purges it after 30 days.
4. If only ``keep_for`` rules match, the item is kept until the latest end and afterwards
   nothing happens to it (action ``none``); no matching rule at all is also ``none``.

Holds are not part of this module: they always win over any decision made here
(``vault.policy.holds.final_decision``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vault.model import Problem, folder_forms, normalise_flags
from vault.policy.duration import Duration, DurationError, parse_duration

KEEP = "keep"
PURGE = "purge"
NONE = "none"

INTERNAL_DATE = "internal_date"
EXPUNGED = "expunged"
BASES = (INTERNAL_DATE, EXPUNGED)

# Folder names (any level below the user's root) that mail clients use for junk mail.
JUNK_FOLDER_NAMES = frozenset({"junk", "spam", "junk e-mail", "junk email", "bulk mail"})

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_RULE_KEYS = {"name", "description", "keep_for", "purge_after", "basis", "match"}
_MATCH_LISTS = ("folders", "users", "groups", "flags")
_MATCH_KEYS = set(_MATCH_LISTS) | {"junk", "all"}


class RulesError(Exception):
    """One or more rule files are invalid; ``problems`` names each file and rule."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid retention rules:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class ItemFacts:
    """What the rule engine needs to know about one archived item."""

    item_id: str
    folder: str  # e.g. "user/jane/Junk"
    user: str  # custodian: directory id or login
    internal_date: datetime
    expunged_at: datetime | None = None
    groups: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    blob: str = ""
    # Other names of the custodian (login, mail addresses), so that rules and holds
    # written with a login still match when ``user`` is a directory id.
    user_aliases: tuple[str, ...] = ()

    def user_names(self) -> set[str]:
        return {n.casefold() for n in (self.user, *self.user_aliases) if n}


def glob_to_regex(pattern: str) -> re.Pattern:
    """``*`` and ``?`` stay inside one folder level; ``**`` crosses levels, and a trailing
    ``/**`` also matches the folder itself (``user/*/Junk/**`` covers ``user/jane/Junk``)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def is_junk_folder(folder: str) -> bool:
    parts = folder.split("/")
    if parts[0] == "user":
        parts = parts[2:]  # "user/<login>/...": a user may well be called "spam"
    return any(p.casefold() in JUNK_FOLDER_NAMES for p in parts)


@dataclass(frozen=True)
class Match:
    folders: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    junk: bool | None = None
    _folder_res: tuple[re.Pattern, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_folder_res", tuple(glob_to_regex(p) for p in self.folders))

    def why_not(self, item: ItemFacts) -> str | None:
        """None when the item matches, else the first reason it does not."""
        names = folder_forms(item.folder)
        if self.folders and not any(r.fullmatch(n) for r in self._folder_res for n in names):
            return f"folder {item.folder!r} matches none of {list(self.folders)}"
        if self.users and not item.user_names() & {u.casefold() for u in self.users}:
            return f"custodian {item.user!r} is none of {list(self.users)}"
        if self.groups and not {g.casefold() for g in item.groups} & {g.casefold() for g in self.groups}:
            return f"custodian groups {sorted(item.groups)} include none of {list(self.groups)}"
        if self.flags and not {f.casefold() for f in normalise_flags(item.flags)} & {
            f.casefold() for f in self.flags
        }:
            return f"flags {normalise_flags(item.flags)} include none of {list(self.flags)}"
        if self.junk is not None and is_junk_folder(item.folder) != self.junk:
            return f"folder {item.folder!r} is {'not ' if self.junk else ''}a junk folder"
        return None


@dataclass(frozen=True)
class Rule:
    name: str
    action: str  # KEEP (keep_for) or PURGE (purge_after)
    duration: Duration
    basis: str = INTERNAL_DATE
    match: Match = Match()
    description: str = ""
    source: str = ""  # the file it came from

    def describe(self) -> str:
        verb = "keep_for" if self.action == KEEP else "purge_after"
        since = "internal date" if self.basis == INTERNAL_DATE else "expunge"
        return f"{verb} {self.duration} from {since}"

    def why_not(self, item: ItemFacts) -> str | None:
        if self.basis == EXPUNGED and item.expunged_at is None:
            return "counts from the expunge, and the item is not expunged"
        return self.match.why_not(item)

    def ends_at(self, item: ItemFacts) -> datetime:
        """When this rule's period ends for ``item``; only for an item it matches (why_not)."""
        start = item.expunged_at if self.basis == EXPUNGED else item.internal_date
        if start is None:
            raise ValueError(
                f"rule {self.name!r} counts from the expunge; item {item.item_id} is not expunged"
            )
        return self.duration.after(start)


@dataclass(frozen=True)
class Decision:
    action: str  # KEEP, PURGE or NONE
    rule: Rule | None  # the winner (longest retention), None when no rule matches
    reason: str
    purge_at: datetime | None = None  # when the item becomes (or became) purgeable
    retain_until: datetime | None = None  # end of the winner's period
    purge_rule: Rule | None = None  # the purge_after rule that authorises the purge
    held_by: tuple[str, ...] = ()  # matters holding the item (see holds.final_decision)


def show_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%SZ") if when.tzinfo else when.isoformat()


def _latest(matches: list[tuple[Rule, datetime]]) -> tuple[Rule, datetime]:
    """Latest end; keep beats purge at the same end; then the smaller name."""
    by_name = sorted(matches, key=lambda m: m[0].name)
    return max(by_name, key=lambda m: (m[1], m[0].action == KEEP))


def matching(item: ItemFacts, rules: Iterable[Rule]) -> list[tuple[Rule, datetime]]:
    return [(r, r.ends_at(item)) for r in rules if r.why_not(item) is None]


def evaluate(item: ItemFacts, rules: Iterable[Rule], now: datetime) -> Decision:
    """What retention alone says about ``item`` at ``now`` (see the module docstring)."""
    matches = matching(item, rules)
    if not matches:
        return Decision(NONE, None, "no retention rule matches")
    winner, end = _latest(matches)
    purges = [m for m in matches if m[0].action == PURGE]
    if not purges:
        if now < end:
            return Decision(
                KEEP,
                winner,
                f"kept until {show_time(end)} by rule {winner.name!r} ({winner.describe()})",
                retain_until=end,
            )
        return Decision(
            NONE,
            winner,
            f"retention by rule {winner.name!r} ({winner.describe()}) "
            f"ended {show_time(end)}; no rule purges it",
            retain_until=end,
        )
    purge_rule, _ = _latest(purges)
    if winner is purge_rule:
        why = f"rule {winner.name!r} ({winner.describe()})"
    else:
        why = (
            f"rule {winner.name!r} ({winner.describe()}) has the longest retention; "
            f"then rule {purge_rule.name!r} ({purge_rule.describe()}) purges"
        )
    action = PURGE if now >= end else KEEP
    when = f"purgeable since {show_time(end)}" if action == PURGE else f"kept until {show_time(end)}"
    return Decision(action, winner, f"{when}: {why}", purge_at=end, retain_until=end, purge_rule=purge_rule)


# ---------------------------------------------------------------- rule files


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _parse_match(table: Any) -> Match:
    if table == "all":  # match = "all": every item, said explicitly
        return Match()
    if not isinstance(table, dict):
        raise ValueError(f"'match' must be \"all\" (every item) or a table ([rule.match]), not {table!r}")
    unknown = set(table) - _MATCH_KEYS
    if unknown:
        raise ValueError(f"unknown match key(s) {sorted(unknown)}; known: {sorted(_MATCH_KEYS)}")
    if "all" in table:
        if table["all"] is not True:
            raise ValueError("match.all can only be true (leave it out to match by the other keys)")
        if len(table) > 1:
            raise ValueError(
                f"match.all = true matches every item: it takes no other key ({sorted(set(table) - {'all'})})"
            )
        return Match()
    if not table:
        raise ValueError(
            "an empty [rule.match] would match every item: give folders, users, groups, "
            'flags or junk, or match = "all" for a rule that matches every item'
        )
    lists = {k: _string_list(table[k], f"match.{k}") for k in _MATCH_LISTS if k in table}
    junk = table.get("junk")
    if junk is not None and not isinstance(junk, bool):
        raise ValueError("match.junk must be true or false")
    return Match(**lists, junk=junk)


def _match_table(table: dict) -> Any:
    if "match" not in table:
        raise ValueError(
            "no [rule.match]: give folders, users, groups, flags or junk there, "
            'or match = "all" for a rule that matches every item'
        )
    return table["match"]


def _parse_rule(table: Any, source: str) -> Rule:
    if not isinstance(table, dict):
        raise ValueError("each [[rule]] must be a table")
    unknown = set(table) - _RULE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; known: {sorted(_RULE_KEYS)}")
    actions = [k for k in ("keep_for", "purge_after") if k in table]
    if len(actions) != 1:
        raise ValueError("needs exactly one of keep_for or purge_after")
    basis = table.get("basis", INTERNAL_DATE)
    if basis not in BASES:
        raise ValueError(f"basis must be one of {list(BASES)}, not {basis!r}")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    try:
        duration = parse_duration(table[actions[0]])
    except DurationError as e:
        raise ValueError(f"{actions[0]}: {e}") from None
    return Rule(
        name=table["name"],
        action=KEEP if actions[0] == "keep_for" else PURGE,
        duration=duration,
        basis=basis,
        match=_parse_match(_match_table(table)),
        description=description,
        source=source,
    )


def _parse_text(text: str, source: str) -> tuple[list[Rule], list[Problem]]:
    """The valid rules of one file and the problems with the others."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return [], [Problem(source, f"not valid TOML: {e}")]
    unknown = set(data) - {"rule"}
    if unknown:
        return [], [
            Problem(source, f"unknown top-level key(s) {sorted(unknown)}; rules go in [[rule]] tables")
        ]
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        return [], [Problem(source, "'rule' must be an array of tables: write [[rule]]")]
    rules, problems = [], []
    for n, table in enumerate(tables, 1):
        name = table.get("name") if isinstance(table, dict) else None
        label = f"rule {name!r}" if isinstance(name, str) else f"rule #{n}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            problems.append(Problem(f"{source}: {label}", "needs a name of letters, digits, '_', '.' or '-'"))
            continue
        try:
            rules.append(_parse_rule(table, source))
        except ValueError as e:
            problems.append(Problem(f"{source}: {label}", str(e)))
    return rules, problems


def parse_rules(text: str, source: str) -> list[Rule]:
    """The rules in one file's text; RulesError naming ``source`` and the rule if invalid."""
    rules, problems = _parse_text(text, source)
    if problems:
        raise RulesError(problems)
    return rules


def load_rules(directory: Path | str) -> list[Rule]:
    """Every rule in ``directory/*.toml``, sorted by name; a missing directory has none.

    All files are checked before anything is returned, so one report lists every problem.
    """
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise RulesError([Problem(str(directory), "rules path is not a directory")])
    rules: list[Rule] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}  # rule name -> file that defined it
    for file in sorted(directory.glob("*.toml")):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(str(file), f"not UTF-8 text: {e}"))
            continue
        except OSError as e:
            problems.append(Problem(str(file), f"cannot read: {e.strerror or e}"))
            continue
        found, file_problems = _parse_text(text, str(file))
        problems.extend(file_problems)
        for rule in found:
            if rule.name in seen:
                problems.append(
                    Problem(f"{file}: rule {rule.name!r}", f"name already used in {seen[rule.name]}")
                )
            else:
                seen[rule.name] = str(file)
                rules.append(rule)
    if problems:
        raise RulesError(problems)
    return sorted(rules, key=lambda r: r.name)


def rules_from_config(config) -> list[Rule]:
    return load_rules(config.path("policy", "rules_path"))
