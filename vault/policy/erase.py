"""Data-subject erasure: purge a custodian's mail unless a hold forbids it, and certify it.

Erasure takes four eyes (vault/policy/approval.py): one admin requests it with a reason
(:func:`request_erasure`; ``dry_run`` shows exactly the items it would remove and records
nothing), another approves it (:func:`approve_erasure`). The request records the items it
covers; the approval erases those of them that are still archived, and is refused, naming
the holds, while any active hold applies to one of them (holds always win; the request
stays pending until it expires). New mail of the custodian that arrived after the request
is not erased by it.

The certificate (``erasure.certified``, the approval's entry) names what was erased (item
ids and content hashes, never content), the request, who asked, who approved and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vault.archive import Vault
from vault.entries import EntrySpec, Kind
from vault.identity import Caller
from vault.index.matcher import index_matcher, matching_items
from vault.model import format_time
from vault.policy import approval
from vault.policy.approval import ERASURE, Requested
from vault.policy.decide import facts_of, holds_of
from vault.policy.holds import holding
from vault.purge import orphans_of, purge_items


class ErasureRefused(Exception):
    def __init__(self, holds: list[str]):
        super().__init__("erasure refused: held by " + ", ".join(holds))
        self.holds = holds


@dataclass
class ErasurePlan:
    """What an erasure of ``custodian`` / ``query`` would remove now."""

    custodian: str | None
    query: str | None
    items: list[dict] = field(default_factory=list)  # {item, mailbox, internal_date, blob}
    held_by: list[str] = field(default_factory=list)  # the active holds that would refuse it

    @property
    def blobs(self) -> list[str]:
        return sorted({i["blob"] for i in self.items})

    def describe(self) -> str:
        return " and ".join(
            x
            for x in (
                self.custodian and f"custodian {self.custodian}",
                self.query and f"query {self.query!r}",
            )
            if x
        )


def plan_erasure(vault: Vault, custodian: str | None = None, *, query: str | None = None) -> ErasurePlan:
    """The items of ``custodian``, or those whose content matches ``query`` (both: the
    custodian's items that match), and the holds that forbid erasing them. The query is the
    search language (vault/index); one the index cannot answer stops the erasure (raises
    FileNotFoundError or QuerySyntaxError): erasing on a guess is not an option."""
    if not custodian and not query:
        raise ValueError("an erasure needs a custodian or a query")
    rows = vault.catalog.all_items()
    if custodian:
        rows = [r for r in rows if facts_of(vault, r).user.casefold() == custodian.casefold()]
    if query:
        matching = matching_items(vault, query)
        rows = [r for r in rows if r["item"] in matching]
    plan = ErasurePlan(custodian, query)
    plan.items = [
        {
            "item": r["item"],
            "mailbox": vault.catalog.folder_name(r["mailbox_id"]) or r["mailbox_id"],
            "internal_date": r["internal_date"],
            "blob": r["blob"],
        }
        for r in rows
    ]
    plan.held_by = _blocking(vault, rows)
    return plan


def _blocking(vault: Vault, rows: list[dict]) -> list[str]:
    holds = [h for h in holds_of(vault) if h.active()]
    if not holds or not rows:
        return []
    matcher = index_matcher(vault)
    return sorted({h.matter for r in rows for h in holding(facts_of(vault, r), holds, matcher)})


@dataclass
class ErasureRequest(Requested):
    plan: ErasurePlan | None = None

    def to_json(self) -> dict:
        plan = self.plan
        return {
            **super().to_json(),
            "items": plan.items if plan else [],
            "blobs": len(plan.blobs) if plan else 0,
            "describe": plan.describe() if plan else "",
        }


def request_erasure(
    vault: Vault,
    caller: Caller,
    custodian: str | None = None,
    *,
    query: str | None = None,
    reason: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ErasureRequest:
    """Request the erasure of what :func:`plan_erasure` finds, for another admin to approve
    (``erasure.requested``, recorded with the vault's writer). Only admins request; a
    request any active hold blocks is refused, naming the holds. ``dry_run``: the plan only,
    nothing recorded (except a refused caller: every refusal is recorded)."""
    action = "request an erasure"
    approval.require_admin(vault, caller, action)
    if not dry_run and not (reason or "").strip():
        raise ValueError("an erasure request needs a reason")
    plan = plan_erasure(vault, custodian, query=query)
    if plan.held_by:
        if dry_run:
            raise ErasureRefused(plan.held_by)
        approval.refuse(vault, caller, f"{action} for {plan.describe()}", ErasureRefused(plan.held_by))
    if dry_run:
        return ErasureRequest(None, None, None, plan=plan)
    if not plan.items:
        raise approval.RequestError(f"nothing to erase: no archived item of {plan.describe()}")
    rid = approval.new_request_id(vault, ERASURE)
    covers = {
        "custodian": custodian,
        "query": query,
        "items": [i["item"] for i in plan.items],
        "blobs": plan.blobs,
    }
    data = {"request": rid, "reason": reason.strip(), **covers, **caller.audit_fields()}
    how = approval.record(vault, EntrySpec(Kind.ERASURE_REQUESTED, rid, data, actor=caller.actor))
    expires = approval.expires_at(vault, rid, now=now)
    return ErasureRequest(rid, expires, how, covers, plan=plan)


def approve_erasure(vault: Vault, caller: Caller, request_id: str, *, now: datetime | None = None) -> dict:
    """Approve and perform erasure request ``request_id`` as ``caller`` (an admin other than
    the requester): purge the items it covered that are still archived, delete the blobs
    nothing else references, and record the certificate. ``vault`` must be the writer (an
    erasure answers now: it does not queue)."""
    if not vault.writer:
        raise ValueError("an erasure needs the vault opened as its writer")
    request = approval.for_approval(vault, ERASURE, caller, request_id, now=now)
    covered = set(request.data.get("items") or [])
    rows = [r for r in vault.catalog.all_items() if r["item"] in covered]
    blocking = _blocking(vault, rows)
    if blocking:
        approval.refuse(
            vault,
            caller,
            f"approve {ERASURE.name} request {request.id}",
            ErasureRefused(blocking),
            request=request.id,
        )
    custodian, query = request.data.get("custodian"), request.data.get("query")
    who = ErasurePlan(custodian, query).describe()
    reason = f"erasure request {request.id} for {who}"
    why = {r["item"]: {"how": "erasure", "request": request.id, "rule": None, "reason": reason} for r in rows}
    present = {r["item"] for r in rows}
    certificate = {
        "request": request.id,
        "requested_by": request.actor,
        "requested_at": format_time(request.requested_at),
        "reason": request.reason,
        "custodian": custodian,
        "query": query,
        "items": [r["item"] for r in rows],
        "blobs": sorted({r["blob"] for r in rows}),
        # deleted after the certificate's commit, by vault/purge.py: finished after a crash
        "blobs_deleted": len(orphans_of(vault, rows)),
        "already_gone": sorted(covered - present),  # purged since the request (e.g. by a sweep)
        **caller.audit_fields(),
    }
    # the purges and the certificate in one commit: an erasure is recorded whole or not at all
    certified = EntrySpec(Kind.ERASURE, request.id, certificate, actor=caller.actor)
    purge_items(vault, rows, why, caller.actor, also=(certified,))
    return certificate
