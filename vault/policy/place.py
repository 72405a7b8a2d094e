"""Placing and releasing legal holds: the rules (one active hold per matter; who placed or
released it is the recorded actor) and the ledger entry, recorded with the vault's writer
(this process's, or the vault service's when it runs the operation). The CLI and the
service's API call these, so neither can
skip a rule.

Releasing a hold takes four eyes (vault/policy/approval.py): one admin requests the release
with a reason (:func:`request_release`, ``hold.release_requested``; a dry run shows the hold
it would release), another approves it (:func:`approve_release`), which records
``hold.released`` naming the request, the requester and the approver (``released_by``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vault.entries import EntrySpec, Kind
from vault.identity import Caller
from vault.model import format_time, now
from vault.model import now as utc_now
from vault.policy import approval
from vault.policy.approval import RELEASE, Requested
from vault.policy.cyrus_hold import reach_cyrus
from vault.policy.follow import after_commit
from vault.policy.holds import Hold, HoldError, parse_date_bound
from vault.policy.sweep import holds_of
from vault.recording import record_entry


@dataclass
class HoldChange:
    hold: Hold
    how: str  # "recorded" in the ledger
    cyrus: list[str] = field(default_factory=list)  # what the mail server does for it (cyrus_hold.py)


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
    on_behalf_of: str | None = None,
) -> HoldChange:
    """Place hold ``matter``; raises HoldError if it exists and is active or is malformed
    (dates: YYYY-MM-DD, a bare ``date_to`` covering its whole day, or ISO times).
    ``on_behalf_of``: whom an admin (the actor, the hold's owner) placed it for."""
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
    extra = {"on_behalf_of": on_behalf_of} if on_behalf_of else {}
    how = _record(vault, Kind.HOLD_PLACED, hold, actor, extra)
    return HoldChange(hold, how, reach_cyrus(vault, matter, hold.custodians, placing=True))


def matters_of(vault, login: str) -> list[Hold]:
    """The active holds (matters) ``login`` is assigned to review."""
    return [h for h in holds_of(vault) if h.active() and login.lower() in {r.lower() for r in h.reviewers}]


@dataclass
class ReleaseRequest(Requested):
    hold: Hold | None = None

    def to_json(self) -> dict:
        return {**super().to_json(), "hold": self.hold.to_data() if self.hold else None}


def request_release(
    vault, caller: Caller, matter: str, *, reason: str, dry_run: bool = False, now: datetime | None = None
) -> ReleaseRequest:
    """Request the release of active hold ``matter`` for another admin to approve. Only
    admins request (a refusal is recorded); HoldError if there is no such active hold, or its
    release is already requested. ``dry_run``: the hold only, nothing recorded."""
    approval.require_admin(vault, caller, f"request the release of hold {matter!r}")
    if not dry_run and not (reason or "").strip():
        raise HoldError("a release request needs a reason")
    hold = _active(vault, matter)
    pending = [r for r in approval.requests_of(vault, RELEASE, now=now) if r.data.get("matter") == matter]
    if pending:
        raise HoldError(
            f"the release of hold {matter!r} is already requested: {pending[0].id} by {pending[0].actor}"
        )
    if dry_run:
        return ReleaseRequest(None, None, None, hold=hold)
    rid = approval.new_request_id(vault, RELEASE)
    covers = {"matter": matter, "hold": hold.to_data()}
    data = {"request": rid, "reason": reason.strip(), **covers, **caller.audit_fields()}
    how = approval.record(vault, EntrySpec(Kind.RELEASE_REQUESTED, rid, data, actor=caller.actor))
    expires = approval.expires_at(vault, rid, now=now)
    return ReleaseRequest(rid, expires, how, covers, hold=hold)


def approve_release(vault, caller: Caller, request_id: str, *, now: datetime | None = None) -> HoldChange:
    """Approve hold release request ``request_id`` as ``caller`` (an admin other than the
    requester) and release the hold: the one the request named, still active (HoldError if
    it was released or placed anew since)."""
    request = approval.for_approval(vault, RELEASE, caller, request_id, now=now)
    matter = request.data["matter"]
    hold = _active(vault, matter)
    if format_time(hold.created_at) != (request.data.get("hold") or {}).get("created_at"):
        raise HoldError(
            f"hold {matter!r} was placed anew since request {request.id}: request its release again"
        )
    released = hold.released(utc_now(), caller.actor)
    data = {
        **released.to_data(),
        "request": request.id,
        "requested_by": request.actor,
        "release_reason": request.reason,
        **caller.audit_fields(),
    }
    spec = EntrySpec(Kind.HOLD_RELEASED, request.id, data, actor=caller.actor)
    how = approval.record(vault, spec, follow=after_commit)
    return HoldChange(released, how, reach_cyrus(vault, matter, hold.custodians, placing=False))


def _active(vault, matter: str) -> Hold:
    active = [h for h in holds_of(vault) if h.matter == matter and h.active()]
    if not active:
        raise HoldError(f"no active hold named {matter!r}")
    return active[0]


def _record(vault, kind: str, hold: Hold, actor: str, extra: dict | None = None) -> str:
    data = {**hold.to_data(), **(extra or {})}
    return record_entry(vault, EntrySpec(kind, None, data, actor=actor), follow=after_commit)
