"""What the vault service does for its callers: one function per operation of the local API,
``op(service, caller, params) -> JSON-able result``. The caller is authenticated (the socket's
peer credentials); each operation checks the caller's roles (vault/identity.py) before it
reads or writes anything, and a refusal is itself an audit entry (``access.refused``).

Writes run with the service's one writer (the committer's thread, ``service.write``), so
nothing is refused because "another writer holds the vault": an import lands while live
ingest runs, its entries committed between live batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from vault.entries import Kind
from vault.identity import ADMIN, AUDITOR, REVIEWER, Caller, Forbidden


class BadRequest(ValueError):
    """The request is malformed: 400, nothing done."""


class ServiceHandle(Protocol):
    config: Any

    def write(self, fn: Callable[[Any], Any]) -> Any: ...

    def health(self) -> dict: ...


def _str(params: dict, key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key!r} must be a non-empty string")
    return value


def _opt(params: dict, key: str) -> str | None:
    return None if params.get(key) is None else _str(params, key)


def _record_as(caller: Caller, vault, kind: str, item: str | None, data: dict) -> None:
    vault.record(kind, item=item, data={**data, **caller.audit_fields()}, actor=caller.actor)


# ---------------------------------------------------------------- operations


def ping(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    return {"pid": os.getpid(), "caller": caller.login, "actor": caller.actor, "roles": sorted(caller.roles)}


def status(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The service's own health: the broker, its workers (and those lost), the last event."""
    caller.require("see the service's health", AUDITOR)
    return {"pid": os.getpid(), **service.health()}


_AUDITED_LOCALLY = frozenset({Kind.SEARCH_RUN, Kind.EXPORT_MADE, Kind.RESTORE_DONE})


def audit(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The audit entry of a search, export or restore the caller ran against the home itself
    (only the home's owner can: an admin). The actor is the caller, whatever it claims."""
    caller.require("record audit entries")
    kind = _str(params, "kind")
    if kind not in _AUDITED_LOCALLY:
        raise BadRequest(f"{kind} is not an audit entry a caller records")
    data = params.get("data")
    if not isinstance(data, dict):
        raise BadRequest("'data' must be an object")
    item = _opt(params, "item")

    def write(vault) -> None:
        _record_as(caller, vault, kind, item, data)
        vault.commit()

    service.write(write)
    return {"recorded": kind}


def import_sources(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Snapshot runs of sources on this host into their folders (admins: the service reads
    them as its own user)."""
    from vault.ingest.importers.base import SourceError
    from vault.ingest.importers.importer import Importer

    caller.require("import")
    targets = params.get("targets")
    if not isinstance(targets, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in targets
    ):
        raise BadRequest("'targets' must be a list of [source, mailbox] pairs")
    kind = _opt(params, "kind")
    follow = params.get("follow_symlinks") is True

    def write(vault) -> dict:
        reports, failed = [], []
        for source, mailbox in targets:
            try:
                importer = Importer(
                    vault, source, mailbox, kind=kind, follow_symlinks=follow, actor=caller.actor
                )
                reports.append(importer.run().to_json())
            except SourceError as e:
                failed.append(str(e))
        return {"imports": reports, "errors": failed}

    return service.write(write)


def place_hold(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    from vault.policy.place import place_hold as place

    caller.require("place a hold")
    matter = _str(params, "matter")
    custodians = params.get("custodians")
    if not isinstance(custodians, list) or not custodians:
        raise BadRequest("'custodians' must be a non-empty list")

    def write(vault) -> dict:
        change = place(
            vault,
            matter,
            custodians=custodians,
            reason=_str(params, "reason"),
            actor=caller.actor,
            query=_opt(params, "query"),
            date_from=_opt(params, "date_from"),
            date_to=_opt(params, "date_to"),
            reviewers=[r for r in params.get("reviewers") or [] if isinstance(r, str)],
        )
        return {"hold": change.hold.to_data(), "how": change.how}

    return service.write(write)


def request_release(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Four eyes: one admin requests a hold's release (vault/policy/approval.py)."""
    from vault.policy.place import request_release as request

    matter, reason = _str(params, "matter"), _opt(params, "reason") or ""
    dry_run = bool(params.get("dry_run"))

    return service.write(
        lambda vault: request(vault, caller, matter, reason=reason, dry_run=dry_run).to_json()
    )


def approve_release(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Four eyes: another admin approves; the hold is released."""
    from vault.policy.place import approve_release as approve

    rid = _str(params, "request")

    def write(vault) -> dict:
        change = approve(vault, caller, rid)
        return {"hold": change.hold.to_data(), "how": change.how}

    return service.write(write)


def request_erasure(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Four eyes: one admin requests an erasure; ``dry_run`` shows what it would cover."""
    from vault.policy.erase import request_erasure as request

    custodian, query = _opt(params, "custodian"), _opt(params, "query")
    reason, dry_run = _opt(params, "reason") or "", bool(params.get("dry_run"))

    def write(vault) -> dict:
        return request(vault, caller, custodian, query=query, reason=reason, dry_run=dry_run).to_json()

    return service.write(write)


def approve_erasure(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Four eyes: another admin approves; the erasure runs now, with the service's writer, and
    its certificate (or its refusal) comes back."""
    from vault.policy.erase import approve_erasure as approve

    rid = _str(params, "request")
    return service.write(lambda vault: approve(vault, caller, rid))


def withdraw_request(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    from vault.policy.approval import BY_KEY, withdraw

    flow = BY_KEY.get(_str(params, "flow"))
    if flow is None:
        raise BadRequest(f"'flow' must be one of {', '.join(BY_KEY)}")
    rid = _str(params, "request")
    service.write(lambda vault: withdraw(vault, flow, caller, rid))
    return {"withdrawn": rid}


def sweep(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    from vault.model import parse_time
    from vault.policy.sweep import sweep as run_sweep
    from vault.policy.sweep import sync_storage_holds

    caller.require("run a retention sweep")
    as_of = _opt(params, "as_of")

    def write(vault) -> dict:
        report = run_sweep(vault, now=parse_time(as_of) if as_of else None, actor=caller.actor)
        sync_storage_holds(vault)
        return asdict(report)

    return service.write(write)


def reconcile(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    from vault.ingest.collector.client import CollectorClient
    from vault.ingest.reconcile import reconcile as run_reconcile

    caller.require("reconcile")
    mailboxes = params.get("mailboxes") or None
    if mailboxes is not None and not (
        isinstance(mailboxes, list) and all(isinstance(m, str) for m in mailboxes)
    ):
        raise BadRequest("'mailboxes' must be a list of names or ids")
    address = _opt(params, "collector") or service.config["collector"]["address"]

    def write(vault) -> list[dict]:
        with CollectorClient(address, timeout=service.config["collector"]["timeout_seconds"]) as client:
            return [r.to_json() for r in run_reconcile(vault, client, mailboxes, actor=caller.actor)]

    return service.write(write)


def search(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A search within what the caller may see: an admin everything; a reviewer the mail of
    the custodians of the matters (active holds) they are assigned to; a user their own mail
    (``custodian`` is theirs); an auditor none. The search, its scope and its result count
    are audited."""
    from vault.archive import Vault
    from vault.index.indexer import SearchIndex

    query = _str(params, "query")
    custodian = _opt(params, "custodian")
    limit = params.get("limit", 50)
    if not isinstance(limit, int) or limit < 0:
        raise BadRequest("'limit' must be a non-negative integer")
    config = service.config
    scope = None
    if not caller.has(ADMIN) and caller.has(REVIEWER):
        query, scope = _reviewer_scope(config, caller, query, custodian)
    elif not caller.has(ADMIN):
        if caller.has(AUDITOR):
            raise Forbidden(caller, "search mail", "auditors see the audit trail, not mail")
        if custodian not in (None, caller.login):
            raise Forbidden(caller, f"search {custodian}'s mail", "users search their own mail only")
        custodian = caller.login
    index = SearchIndex.open(config.path("index"))
    with Vault.open(config, catch_up=False) as vault:
        total = index.count(query, vault.catalog, custodian)
        hits = index.search(query, vault.catalog, custodian=custodian, limit=limit)

    def write(writer) -> None:
        data = {"query": params["query"], "custodian": custodian, "results": total}
        if scope is not None:
            data["scope"] = scope
        _record_as(caller, writer, Kind.SEARCH_RUN, None, data)
        writer.commit()

    service.write(write)
    return {"total": total, "custodian": custodian, "hits": [asdict(h) for h in hits]}


def _reviewer_scope(config, caller: Caller, query: str, custodian: str | None) -> tuple[str, list[str]]:
    """A reviewer's query confined to the custodians of their matters (and the scope, sorted)."""
    from vault.archive import Vault
    from vault.policy.place import matters_of

    with Vault.open(config, catch_up=False) as vault:
        matters = matters_of(vault, caller.login)
    allowed = sorted({c for h in matters for c in h.custodians})
    if not allowed:
        raise Forbidden(caller, "search mail", "a reviewer of no active matter")
    if custodian is not None and custodian not in allowed:
        raise Forbidden(
            caller, f"search {custodian}'s mail", f"not a custodian of their matters ({', '.join(allowed)})"
        )
    within = [custodian] if custodian else allowed
    return f"({query}) ({' OR '.join(f'custodian:{c}' for c in within)})", within


def audit_trail(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """The audit trail (vault/entries.py AUDIT_TRAIL), from ``since`` on: admins, auditors."""
    from vault.archive import Vault
    from vault.entries import AUDIT_TRAIL

    caller.require("read the audit trail", AUDITOR)
    since = _opt(params, "since") or ""
    with Vault.open(service.config, catch_up=False) as vault:
        return [e.to_json() for e in vault.ledger.entries() if e.kind in AUDIT_TRAIL and e.time >= since]


def verify(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The whole vault checked (vault/verify.py): admins, auditors."""
    from vault.archive import Vault
    from vault.verify import check_vault

    caller.require("verify the vault", AUDITOR)
    with Vault.open(service.config, catch_up=False) as vault:
        problems = check_vault(vault, read_data=bool(params.get("read_data")))
        size = vault.ledger.size
    return {
        "ok": not problems,
        "entries": size,
        "problems": [{"where": p.where, "what": p.what} for p in problems],
    }


OPS: dict[str, Callable[[ServiceHandle, Caller, dict], Any]] = {
    "ping": ping,
    "status": status,
    "audit": audit,
    "import": import_sources,
    "hold.place": place_hold,
    "hold.release": request_release,
    "hold.approve": approve_release,
    "erase": request_erasure,
    "erase.approve": approve_erasure,
    "withdraw": withdraw_request,
    "sweep": sweep,
    "reconcile": reconcile,
    "search": search,
    "audit.list": audit_trail,
    "verify": verify,
}


def refused(service: ServiceHandle, caller: Caller, op: str, error: Forbidden) -> None:
    """Every refusal is itself an audit entry."""

    def write(vault) -> None:
        _record_as(
            caller,
            vault,
            Kind.ACCESS_REFUSED,
            None,
            {
                "operation": op,
                "action": error.action,
                "login": caller.login,
                "roles": sorted(caller.roles),
                "why": error.why,
            },
        )
        vault.commit()

    service.write(write)
