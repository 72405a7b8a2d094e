"""Legal holds: named matters that preserve items regardless of retention (docs/architecture.md 1.9).

A hold applies to an item when all of these are true:

- the hold is active (not released, or released after the moment asked about);
- the item's custodian (``ItemFacts.user`` or one of its ``user_aliases``) is one of the
  hold's custodians (case-insensitive);
- the item's received date (its internal date: vault/dates.py, the one date rule) lies
  within ``date_from``..``date_to`` (both inclusive; either may be open; a bare ``--to`` day
  is stored as its last microsecond, so the hold covers the whole day);
- the hold has no query, or the caller's ``query_matcher(query, item)`` says the item
  matches. The search index belongs to another module, so matching a query is the
  caller's job; a hold with a query and no matcher counts as applying, because wrongly
  preserving an item can be undone and wrongly purging one cannot.

Several holds on one item add up (the item stays held until the last one is released),
and a hold always wins over retention (:func:`final_decision`).

Holds and releases are ledger entries: :meth:`Hold.to_data` / :meth:`Hold.from_data`
give the entry data (times as ``vault.model.format_time`` strings).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from vault import dates
from vault.model import format_time, parse_time
from vault.policy.rules import KEEP, Decision, ItemFacts

QueryMatcher = Callable[[str, ItemFacts], bool]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class HoldError(ValueError):
    pass


@dataclass(frozen=True)
class Hold:
    matter: str
    custodians: tuple[str, ...]
    reason: str
    owner: str  # who placed it (ledger actor)
    created_at: datetime
    query: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    released_at: datetime | None = None
    released_by: str | None = None
    reviewers: tuple[str, ...] = ()  # who may search and export this matter's mail (logins)

    def __post_init__(self):
        if not isinstance(self.matter, str) or not self.matter.strip() or _CONTROL.search(self.matter):
            raise HoldError(f"matter name {self.matter!r} must be non-empty printable text")
        if (
            isinstance(self.custodians, str)
            or not self.custodians
            or not all(isinstance(c, str) and c.strip() for c in self.custodians)
        ):
            raise HoldError(f"hold {self.matter!r}: needs at least one custodian")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise HoldError(f"hold {self.matter!r}: needs a reason")
        if not isinstance(self.owner, str) or not self.owner.strip():
            raise HoldError(f"hold {self.matter!r}: needs an owner")
        if self.created_at is None:
            raise HoldError(f"hold {self.matter!r}: needs created_at")
        for name in ("created_at", "date_from", "date_to", "released_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise HoldError(f"hold {self.matter!r}: {name} must be a datetime with a zone")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise HoldError(f"hold {self.matter!r}: date range starts after it ends")
        if self.query is not None and not isinstance(self.query, str):
            raise HoldError(f"hold {self.matter!r}: query must be text")
        if self.query is not None and not self.query.strip():
            object.__setattr__(self, "query", None)
        object.__setattr__(self, "custodians", tuple(self.custodians))
        if isinstance(self.reviewers, str) or not all(
            isinstance(r, str) and r.strip() for r in self.reviewers
        ):
            raise HoldError(f"hold {self.matter!r}: reviewers must be login names")
        object.__setattr__(self, "reviewers", tuple(self.reviewers))

    def active(self, at: datetime | None = None) -> bool:
        """Placed and not released (at ``at``, or now when ``at`` is None)."""
        if at is None:
            return self.released_at is None
        return self.created_at <= at and (self.released_at is None or at < self.released_at)

    def released(self, when: datetime, actor: str) -> Hold:
        if self.released_at is not None:
            raise HoldError(f"hold {self.matter!r} was already released at {format_time(self.released_at)}")
        if not actor or not actor.strip():
            raise HoldError(f"hold {self.matter!r}: a release needs the actor")
        return dataclasses.replace(self, released_at=when, released_by=actor)

    def to_data(self) -> dict[str, Any]:
        def t(value):
            return format_time(value) if value is not None else None

        return {
            "matter": self.matter,
            "custodians": list(self.custodians),
            "query": self.query,
            "date_from": t(self.date_from),
            "date_to": t(self.date_to),
            "reason": self.reason,
            "owner": self.owner,
            "created_at": t(self.created_at),
            "released_at": t(self.released_at),
            "released_by": self.released_by,
            "reviewers": list(self.reviewers),
        }

    @classmethod
    def from_data(cls, data: Any) -> Hold:
        """Inverse of :meth:`to_data`; HoldError naming the matter on bad data."""
        if not isinstance(data, dict):
            raise HoldError(f"hold data must be an object, not {type(data).__name__}")
        matter = data.get("matter")
        custodians = data.get("custodians")
        if not isinstance(custodians, list):
            raise HoldError(f"hold {matter!r}: custodians must be a list")
        try:

            def raw(key: str) -> Any:  # unchecked JSON: __post_init__ checks every field
                return data.get(key)

            def t(key):
                value = data.get(key)
                return parse_time(value) if value is not None else None

            return cls(
                matter=raw("matter"),
                custodians=tuple(custodians),
                query=raw("query"),
                date_from=t("date_from"),
                date_to=t("date_to"),
                reason=raw("reason"),
                owner=raw("owner"),
                created_at=t("created_at"),
                released_at=t("released_at"),
                released_by=raw("released_by"),
                reviewers=tuple(data.get("reviewers") or ()),
            )
        except HoldError:
            raise
        except (ValueError, TypeError, AttributeError) as e:
            raise HoldError(f"hold {matter!r}: bad data: {e}") from None


def parse_date_bound(text: str, *, end: bool, zone: tzinfo = UTC) -> datetime:
    """A ``--from``/``--to`` value as vault/dates.py reads it (a day or a time, in ``zone``,
    the site's, unless it names one); as an end bound a day means the whole of that day."""
    try:
        if end:
            return dates.through(text, zone) - timedelta(microseconds=1)
        return dates.after(text, zone)
    except dates.DateError as e:
        raise HoldError(str(e)) from None


def applies_to(
    hold: Hold, item: ItemFacts, query_matcher: QueryMatcher | None = None, at: datetime | None = None
) -> bool:
    if not hold.active(at):
        return False
    if not item.user_names() & {c.casefold() for c in hold.custodians}:
        return False
    if hold.date_from is not None and item.internal_date < hold.date_from:
        return False
    if hold.date_to is not None and item.internal_date > hold.date_to:
        return False
    if hold.query is not None and query_matcher is not None:
        return bool(query_matcher(hold.query, item))
    return True


def holding(
    item: ItemFacts,
    holds: Iterable[Hold],
    query_matcher: QueryMatcher | None = None,
    at: datetime | None = None,
) -> list[Hold]:
    """Every hold that preserves ``item``, sorted by matter."""
    return sorted((h for h in holds if applies_to(h, item, query_matcher, at)), key=lambda h: h.matter)


def final_decision(decision: Decision, holds: Iterable[Hold]) -> Decision:
    """Retention's ``decision`` overruled by the holds on the item: held items are kept."""
    matters = tuple(sorted({h.matter for h in holds}))
    if not matters:
        return decision
    names = ", ".join(repr(m) for m in matters)
    return dataclasses.replace(
        decision,
        action=KEEP,
        purge_at=None,
        held_by=matters,
        reason=f"on hold ({names}); without the hold: {decision.action}: {decision.reason}",
    )
