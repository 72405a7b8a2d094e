"""Four eyes: an erasure or a hold release takes two admins (docs/architecture.md 1.9).

One admin *requests* it, giving a reason (a dry run shows exactly what the request would
cover and records nothing); a *different* admin *approves* it, and the approval re-evaluates
the request against the vault as it is then and performs it. The requester may *withdraw* a
pending request; a request not approved within ``[policy] request_expiry`` (default 7 days)
expires. The request, a withdrawal and the approval are ledger entries (vault/entries.py): the
approval is the outcome entry itself (``erasure.certified``, ``hold.released``) naming the
request, so an approval is never recorded without its effect or the other way round.

The engines check the caller (vault/identity.py), not the CLI: only admins request or approve,
the approver's actor must differ from the requester's (and from the person a request was
made for, ``--actor``), and only the requester withdraws.
Every refusal of these rules (not an admin, one's own request, someone else's request,
expired, no longer pending, held) is itself an ``access.refused`` entry naming the caller,
the action and why, recorded through vault/recording.py like the other audit entries.
Plain mistakes (an unknown request id, a hold that does not exist) are errors, not refusals.

Retention sweeps do not come through here: the rules are their approval.

Request ids are short and printable: ``er-`` (erasure) or ``hr-`` (hold release), then eight
characters of an alphabet without look-alikes (0/o, 1/l/i), e.g. ``er-7kq3mxzd``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from vault.entries import EntrySpec, Kind
from vault.identity import Caller, Forbidden
from vault.identity import local_caller as caller_here
from vault.model import format_time, parse_time
from vault.model import now as utc_now
from vault.policy.duration import Duration, DurationError, parse_duration
from vault.recording import Unrecorded, record_entry

PENDING, APPROVED, WITHDRAWN, EXPIRED = "pending", "approved", "withdrawn", "expired"
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


@dataclass(frozen=True)
class Flow:
    """One action that takes four eyes: its name, its request ids' prefix, its entry kinds."""

    name: str  # "erasure", "hold release"
    prefix: str
    requested: str
    withdrawn: str
    command: str  # where an operator approves it, for messages


ERASURE = Flow("erasure", "er", Kind.ERASURE_REQUESTED, Kind.ERASURE_WITHDRAWN, "vaultctl erase")
RELEASE = Flow("hold release", "hr", Kind.RELEASE_REQUESTED, Kind.RELEASE_WITHDRAWN, "vaultctl hold")
FLOWS = (ERASURE, RELEASE)
BY_KEY = {"erasure": ERASURE, "release": RELEASE}  # as callers of the service name them


class RequestError(ValueError):
    """No such request, or not one this command handles, or it cannot be approved now."""


@dataclass(frozen=True)
class Request:
    id: str
    flow: Flow
    actor: str  # the requester (ledger actor)
    requested_at: datetime
    expires_at: datetime
    reason: str
    data: dict[str, Any]  # the request entry's data: what it covers
    state: str  # PENDING, APPROVED, WITHDRAWN or EXPIRED
    closed_by: str | None = None
    closed_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.id,
            "action": self.flow.name,
            "state": self.state,
            "requested_by": self.actor,
            "requested_at": format_time(self.requested_at),
            "expires_at": format_time(self.expires_at),
            "reason": self.reason,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at,
            "covers": {k: v for k, v in self.data.items() if k not in ("request", "reason")},
        }


@dataclass
class Requested:
    """What a request (or its dry run: ``id`` None, nothing recorded) covers."""

    id: str | None
    expires_at: datetime | None
    how: str | None  # "recorded", None for a dry run
    covers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """What ``--json`` prints, and what the vault service answers."""
        expires = format_time(self.expires_at) if self.expires_at else None
        return {"request": self.id, "how": self.how, "expires_at": expires, "covers": self.covers}


def expiry(config) -> Duration:
    text = config["policy"]["request_expiry"]
    try:
        return parse_duration(text)
    except DurationError as e:
        raise ValueError(f"[policy] request_expiry {text!r}: {e}") from None


def _request(config, row: dict, when: datetime) -> Request:
    flow = next(f for f in FLOWS if f.requested == row["kind"])
    requested_at = parse_time(row["requested_at"])
    expires_at = expiry(config).after(requested_at)
    state = row["state"]
    if state == PENDING and when >= expires_at:
        state = EXPIRED
    return Request(
        id=row["request"],
        flow=flow,
        actor=row["actor"] or "",
        requested_at=requested_at,
        expires_at=expires_at,
        reason=row["data"].get("reason") or "",
        data=row["data"],
        state=state,
        closed_by=row["closed_by"],
        closed_at=row["closed_at"],
    )


def requests_of(vault, flow: Flow, *, now: datetime | None = None, everything: bool = False) -> list[Request]:
    """``flow``'s pending requests (``everything``: expired, approved and withdrawn ones too),
    oldest first."""
    when = now or utc_now()
    found = [_request(vault.config, r, when) for r in vault.catalog.requests(flow.requested)]
    return [r for r in found if everything or r.state == PENDING]


def find(vault, flow: Flow, request_id: str, *, now: datetime | None = None) -> Request:
    row = vault.catalog.request(request_id.strip())
    if row is None:
        raise RequestError(f"no request {request_id!r} (list them with '{flow.command} requests')")
    request = _request(vault.config, row, now or utc_now())
    if request.flow is not flow:
        raise RequestError(
            f"{request_id} is a request for {request.flow.name}: see '{request.flow.command} requests'"
        )
    return request


def expires_at(vault, request_id: str, *, now: datetime | None = None) -> datetime:
    """When a request just made expires: counted from its entry's time in the catalog, else
    (not applied yet) from ``now``."""
    row = vault.catalog.request(request_id)
    start = parse_time(row["requested_at"]) if row else (now or utc_now())
    return expiry(vault.config).after(start)


def new_request_id(vault, flow: Flow) -> str:
    while True:
        rid = f"{flow.prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
        if vault.catalog.request(rid) is None:
            return rid


# ---------------------------------------------------------------- refusals


def refuse(vault, caller: Caller, action: str, error: Exception, *, request: str | None = None) -> NoReturn:
    """Record ``access.refused`` (the caller, the action, why) and raise ``error``. If the
    refusal cannot be recorded (another process holds the vault), ``error`` still stands,
    saying so."""
    why = error.why if isinstance(error, Forbidden) else str(error)
    data: dict[str, Any] = {
        "action": action,
        "login": caller.login,
        "roles": sorted(caller.roles),
        "why": why,
        **caller.audit_fields(),
    }
    if request:
        data["request"] = request
    try:
        record(vault, EntrySpec(Kind.ACCESS_REFUSED, request, data, actor=caller.actor))
        error.recorded = True  # type: ignore[attr-defined]  # the service must not record it again
    except Unrecorded as e:
        error.args = (f"{error}; the refusal could not be recorded: {e}",)
        raise error from None
    raise error


def require_admin(vault, caller: Caller, action: str, *, request: str | None = None) -> None:
    try:
        caller.require(action)
    except Forbidden as e:
        refuse(vault, caller, action, e, request=request)


def local_caller(vault, *, acting_for: str | None, action: str) -> Caller:
    """The user running this process (vault.identity.local_caller); a refused ``acting_for``
    (only admins act for someone else) is recorded like every other refusal."""
    try:
        return caller_here(vault.config, acting_for=acting_for)
    except Forbidden as e:
        refuse(vault, e.caller, f"{action} for {acting_for!r}", e)


def for_approval(
    vault, flow: Flow, caller: Caller, request_id: str, *, now: datetime | None = None
) -> Request:
    """The pending request ``request_id`` if ``caller`` may approve it now; otherwise the
    refusal is recorded and raised (Forbidden, or RequestError when it is not pending)."""
    action = f"approve {flow.name} request {request_id}"
    request = find(vault, flow, request_id, now=now)
    require_admin(vault, caller, action, request=request.id)
    if request.actor == caller.actor:
        refuse(
            vault,
            caller,
            action,
            Forbidden(caller, action, "it is their own request (another admin must approve it)"),
            request=request.id,
        )
    if request.data.get("on_behalf_of") == caller.actor:
        refuse(
            vault,
            caller,
            action,
            Forbidden(
                caller, action, f"it was made for them by {request.actor} (a third admin must approve it)"
            ),
            request=request.id,
        )
    if request.state != PENDING:
        refuse(vault, caller, action, RequestError(_not_pending(request)), request=request.id)
    return request


def withdraw(vault, flow: Flow, caller: Caller, request_id: str, *, now: datetime | None = None) -> Request:
    """Withdraw a pending request; only its requester may. Returns it as it was."""
    action = f"withdraw {flow.name} request {request_id}"
    request = find(vault, flow, request_id, now=now)
    if request.actor != caller.actor:
        refuse(
            vault,
            caller,
            action,
            Forbidden(caller, action, f"only its requester ({request.actor}) may withdraw it"),
            request=request.id,
        )
    if request.state != PENDING:
        refuse(vault, caller, action, RequestError(_not_pending(request)), request=request.id)
    data = {"request": request.id, **_subject(request), **caller.audit_fields()}
    record(vault, EntrySpec(flow.withdrawn, request.id, data, actor=caller.actor))
    return request


def _subject(request: Request) -> dict[str, Any]:
    keys = ("matter",) if request.flow is RELEASE else ("custodian", "query")
    return {k: request.data.get(k) for k in keys}


def _not_pending(request: Request) -> str:
    if request.state == EXPIRED:
        return (
            f"{request.flow.name} request {request.id} expired at {format_time(request.expires_at)} "
            "(unapproved requests expire after [policy] request_expiry): request it again"
        )
    return f"{request.flow.name} request {request.id} was {request.state} by {request.closed_by} at {request.closed_at}"


# ---------------------------------------------------------------- recording


def record(vault, spec: EntrySpec, *, follow: Callable | None = None) -> str:
    """vault.recording.record_entry: ``"recorded"``. Unrecorded when another process (the
    vault service) holds the vault: these engines then run in the service, asked through
    its local API (the vaultctl commands do)."""
    return record_entry(vault, spec, follow=follow)
