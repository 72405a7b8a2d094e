"""Placing and releasing legal holds: the rules (one active hold per matter; admins place
any hold, reviewers only within the matters they review, vault/access.py; who placed or
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

from vault.dates import site_zone
from vault.entries import EntrySpec, Kind
from vault.identity import ADMIN, REVIEWER, Caller, Forbidden
from vault.model import format_time, now
from vault.model import now as utc_now
from vault.policy import approval
from vault.policy.approval import RELEASE, Requested
from vault.policy.cyrus_hold import reach_cyrus
from vault.policy.decide import holds_of
from vault.policy.follow import after_commit
from vault.policy.holds import Hold, HoldError, parse_date_bound
from vault.recording import record_entry


@dataclass
class HoldChange:
    hold: Hold
    how: str  # "recorded" in the ledger
    cyrus: list[str] = field(default_factory=list)  # what the mail server does for it (cyrus_hold.py)


def place_hold(
    vault,
    caller: Caller,
    matter: str,
    *,
    custodians: list[str] | tuple[str, ...],
    reason: str,
    query: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    reviewers: list[str] | tuple[str, ...] = (),
    force: bool = False,
) -> HoldChange:
    """Place hold ``matter`` as ``caller`` (its owner, the recorded actor; ``on_behalf_of``
    whom an admin placed it for). Who may place which hold is checked here
    (``require_hold_within``: admins any, reviewers within their matters); a refusal is
    recorded (``access.refused``) and raised. HoldError if it exists and is active or is
    malformed (dates as vault/dates.py reads them: a bare ``date_to`` covers its whole day),
    and, unless ``force``, if its query does not parse or a custodian is unknown to the
    directory and the archive (:func:`hold_doubts`)."""
    action = f"place hold {matter!r}"
    zone = site_zone(vault.config)
    try:
        hold = Hold(
            matter=matter,
            custodians=tuple(custodians),
            reason=reason,
            owner=caller.actor,
            created_at=now(),
            query=query,
            date_from=parse_date_bound(date_from, end=False, zone=zone) if date_from else None,
            date_to=parse_date_bound(date_to, end=True, zone=zone) if date_to else None,
            reviewers=tuple(reviewers),
        )
    except ValueError as e:
        raise HoldError(str(e)) from None
    try:
        require_hold_within(vault, caller, hold, action)
    except Forbidden as e:
        approval.refuse(vault, caller, action, e)
    if any(h.matter == matter and h.active() for h in holds_of(vault)):
        raise HoldError(f"hold {matter!r} exists and is active")
    doubts = [] if force else hold_doubts(vault, hold)
    if doubts:
        raise HoldError(f"hold {matter!r} not placed: " + "; ".join(doubts) + " (--force places it anyway)")
    how = _record(vault, Kind.HOLD_PLACED, hold, caller.actor, caller.audit_fields())
    return HoldChange(hold, how, reach_cyrus(vault, matter, hold.custodians, placing=True))


def hold_doubts(vault, hold: Hold) -> list[str]:
    """What makes ``hold`` likely a mistake: a query the search language refuses (a hold
    whose query the index cannot answer keeps all its custodians' mail), custodians that
    neither the directory nor the archive knows (a typo holds nothing)."""
    from vault.directory import LDAP
    from vault.index.query import QuerySyntaxError, parse
    from vault.model import custodian_of
    from vault.policy.decide import directory_of

    doubts = []
    if hold.query is not None:
        try:
            parse(hold.query, site_zone(vault.config))
        except QuerySyntaxError as e:
            doubts.append(f"its query {hold.query!r} does not parse: {e}")
    archived = {c.casefold() for c in (custodian_of(n) for _, n in vault.catalog.folder_names()) if c}
    directory = directory_of(vault)
    unknown = []
    for name in hold.custodians:
        if name.casefold() in archived:
            continue
        if directory is not None and directory.resolve(name).source == LDAP:
            continue
        unknown.append(name)
    if unknown:
        where = "the directory or the archive" if directory is not None else "the archive"
        doubts.append(f"custodian(s) {', '.join(repr(u) for u in unknown)} unknown to {where}")
    return doubts


def matters_of(vault, login: str) -> list[Hold]:
    """The active holds (matters) ``login`` is assigned to review."""
    return [h for h in holds_of(vault) if h.active() and login.lower() in {r.lower() for r in h.reviewers}]


def require_hold_within(vault, caller: Caller, hold: Hold, action: str) -> None:
    """Forbidden unless ``caller`` may place ``hold``: an admin any; a reviewer one that
    stays within the matters they review (every custodian covered by one matter whose date
    range holds the new hold's: an open end only within an open end) and names no reviewers."""
    if caller.has(ADMIN):
        return
    if not caller.has(REVIEWER):
        raise Forbidden(caller, action, "holds are placed by admins, and by reviewers within their matters")
    matters = matters_of(vault, caller.login)
    if not matters:
        raise Forbidden(caller, action, "a reviewer of no active matter")
    if hold.reviewers:
        raise Forbidden(caller, action, "naming a hold's reviewers is an admin's (they read its mail)")
    outside = [c for c in hold.custodians if not any(_within(hold, c, m) for m in matters)]
    if outside:
        names = ", ".join(sorted({c for m in matters for c in m.custodians}))
        raise Forbidden(
            caller,
            action,
            f"{', '.join(outside)} in that date range is outside their matters' custodians and "
            f"date ranges ({names})",
        )


def _within(hold: Hold, custodian: str, matter: Hold) -> bool:
    """Whether ``hold``'s reach for ``custodian`` lies inside ``matter``'s."""
    if custodian.casefold() not in {c.casefold() for c in matter.custodians}:
        return False
    if matter.date_from is not None and (hold.date_from is None or hold.date_from < matter.date_from):
        return False
    return matter.date_to is None or (hold.date_to is not None and hold.date_to <= matter.date_to)


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
