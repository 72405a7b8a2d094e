"""Placing and releasing legal holds: the rules (one active hold per matter; who placed or
released it is the recorded actor) and the ledger entry, recorded now or queued with the
broker while live ingest holds the vault. The CLI and any API call these, so neither can
skip a rule."""

from __future__ import annotations

from dataclasses import dataclass

from vault.entries import EntrySpec, Kind
from vault.model import now
from vault.policy.follow import after_commit
from vault.policy.holds import Hold, HoldError, parse_date_bound
from vault.policy.sweep import holds_of
from vault.recording import record_entry


@dataclass
class HoldChange:
    hold: Hold
    how: str  # "recorded" in the ledger, or "queued" with the broker


def place_hold(
    vault,
    matter: str,
    *,
    custodians: list[str] | tuple[str, ...],
    reason: str,
    actor: str | None = None,
    query: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    reviewers: list[str] | tuple[str, ...] = (),
) -> HoldChange:
    """Place hold ``matter``; raises HoldError if it exists and is active or is malformed
    (dates: YYYY-MM-DD, a bare ``date_to`` covering its whole day, or ISO times)."""
    from vault.archive import actor_of

    actor = actor_of(vault.config, actor)
    if any(h.matter == matter and h.active() for h in holds_of(vault)):
        raise HoldError(f"hold {matter!r} exists and is active")
    try:
        hold = Hold(
            matter=matter,
            custodians=tuple(custodians),
            reason=reason,
            owner=actor,
            created_at=now(),
            query=query,
            date_from=parse_date_bound(date_from, end=False) if date_from else None,
            date_to=parse_date_bound(date_to, end=True) if date_to else None,
            reviewers=tuple(reviewers),
        )
    except ValueError as e:
        raise HoldError(str(e)) from None
    return HoldChange(hold, _record(vault, Kind.HOLD_PLACED, hold, actor))


def matters_of(vault, login: str) -> list[Hold]:
    """The active holds (matters) ``login`` is assigned to review."""
    return [h for h in holds_of(vault) if h.active() and login.lower() in {r.lower() for r in h.reviewers}]


def release_hold(vault, matter: str, *, actor: str | None = None) -> HoldChange:
    """Release the active hold ``matter``; raises HoldError if there is none."""
    from vault.archive import actor_of

    actor = actor_of(vault.config, actor)
    active = [h for h in holds_of(vault) if h.matter == matter and h.active()]
    if not active:
        raise HoldError(f"no active hold named {matter!r}")
    released = active[0].released(now(), actor)
    return HoldChange(released, _record(vault, Kind.HOLD_RELEASED, released, actor))


def _record(vault, kind: str, hold: Hold, actor: str) -> str:
    return record_entry(vault, EntrySpec(kind, None, hold.to_data(), actor=actor), follow=after_commit)
