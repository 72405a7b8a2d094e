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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from vault.entries import Kind
from vault.identity import AUDITOR, Caller, Forbidden


class BadRequest(ValueError):
    """The request is malformed: 400, nothing done."""


class Conflict(RuntimeError):
    """The service cannot do this while it runs (409): the answer says what to do instead."""


@dataclass
class Stream:
    """An operation's answer that is a byte stream (a restore's or an export's tar,
    vault/restore/stream.py), not JSON. The API sends ``chunks`` as they come (made on a
    thread of their own) and runs ``close`` when they are sent or the caller went away."""

    chunks: Iterator[bytes]
    close: Callable[[], None] = lambda: None
    content_type: str = "application/x-tar"


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


def _bool(params: dict, key: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{key!r} must be true or false")
    return value


def _record_as(caller: Caller, vault, kind: str, item: str | None, data: dict) -> None:
    vault.record(kind, item=item, data={**data, **caller.audit_fields()}, actor=caller.actor)


def _audit(service: ServiceHandle, caller: Caller, kind: str, item: str | None, data: dict) -> None:
    """Record an audit entry (a search, export or restore: before its result leaves) with
    the service's writer."""

    def write(vault) -> None:
        _record_as(caller, vault, kind, item, data)
        vault.commit()

    service.write(write)


def _reader(service: ServiceHandle):
    """The home opened for reading (the committer holds the writer)."""
    from vault.archive import Vault

    return Vault.open(service.config, catch_up=False)


# ---------------------------------------------------------------- operations


def ping(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    return {"pid": os.getpid(), "caller": caller.login, "actor": caller.actor, "roles": sorted(caller.roles)}


def status(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The service's own health: the broker, its workers (and those lost), the last event."""
    caller.require("see the service's health", AUDITOR)
    return {"pid": os.getpid(), **service.health()}


_AUDITED_LOCALLY = frozenset({Kind.SEARCH_RUN, Kind.EXPORT_MADE, Kind.RESTORE_DONE, Kind.MAIL_READ})


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
    from vault.ingest.importers.importer import import_sources as import_all

    caller.require("import")
    targets = params.get("targets")
    if not isinstance(targets, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in targets
    ):
        raise BadRequest("'targets' must be a list of [source, mailbox] pairs")
    kind = _opt(params, "kind")
    follow = params.get("follow_symlinks") is True

    def write(vault) -> dict:
        reports, failed = import_all(
            vault, caller, [(s, m) for s, m in targets], kind=kind, follow_symlinks=follow
        )
        return {"imports": [r.to_json() for r in reports], "errors": failed}

    return service.write(write)


def place_hold(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A hold placed as the caller: admins any, reviewers within their matters (the engine,
    vault/policy/place.py, checks and records a refusal)."""
    from vault.policy.place import place_hold as place

    matter = _str(params, "matter")
    custodians = params.get("custodians")
    if not isinstance(custodians, list) or not custodians:
        raise BadRequest("'custodians' must be a non-empty list")
    reviewers = params.get("reviewers") or []
    if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
        raise BadRequest("'reviewers' must be a list of logins")

    def write(vault) -> dict:
        change = place(
            vault,
            caller,
            matter,
            custodians=custodians,
            reason=_str(params, "reason"),
            query=_opt(params, "query"),
            date_from=_opt(params, "date_from"),
            date_to=_opt(params, "date_to"),
            reviewers=reviewers,
            force=params.get("force") is True,  # the same doubts as the direct path (place.hold_doubts)
        )
        return {"hold": change.hold.to_data(), "how": change.how, "cyrus": change.cyrus}

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
        return {"hold": change.hold.to_data(), "how": change.how, "cyrus": change.cyrus}

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
    if params.get("dry_run") is True:  # what it would purge: the preview the CLI shows first
        with _reader(service) as vault:
            return asdict(run_sweep(vault, now=parse_time(as_of) if as_of else None, dry_run=True))

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
    address = _opt(params, "collector")
    everything, full = params.get("all") is True, params.get("full") is True
    users = params.get("users") or None
    if users is not None and not (isinstance(users, list) and all(isinstance(u, str) for u in users)):
        raise BadRequest("'users' must be a list of logins")

    def write(vault) -> list[dict]:
        with CollectorClient.from_config(service.config, address) as client:
            reports = run_reconcile(
                vault, client, mailboxes, actor=caller.actor, everything=everything, full=full, users=users
            )
            return [r.to_json() for r in reports]

    return service.write(write)


def search(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A search within what the caller may see (vault/access.py): an admin everything; a
    reviewer their matters' custodians and date ranges; a user their own mail; an auditor
    none. The search, its scope and its result count are audited."""
    from vault.access import mail_scope
    from vault.derived import require_current_in_service
    from vault.index.indexer import SearchIndex
    from vault.search import find, search_data

    query = _str(params, "query")
    custodian = _opt(params, "custodian")
    limit, offset = params.get("limit", 50), params.get("offset", 0)
    for key, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadRequest(f"{key!r} must be a non-negative integer")
    at = _opt(params, "at")
    require_current_in_service(service, with_index=True)
    index = SearchIndex.of(service.config)
    with _reader(service) as vault:
        scope = mail_scope(vault, caller, f"search {custodian}'s mail" if custodian else "search mail")
        found = find(vault, index, query, scope=scope, custodian=custodian, limit=limit, offset=offset, at=at)
    _audit(service, caller, Kind.SEARCH_RUN, None, search_data(query, found, scope))
    return {"total": found.total, "custodian": found.custodian, "hits": [asdict(h) for h in found.hits]}


def export(service: ServiceHandle, caller: Caller, params: dict) -> Stream:
    """An e-discovery export of what a search finds, for admins and reviewers (within their
    matters' custodians and date ranges). The service writes it into a private directory of
    the home and streams it (a tar, vault/restore/stream.py); the caller's vaultctl writes it
    where the caller asked. Audited before the first byte leaves."""
    import shutil
    import tempfile
    from pathlib import Path

    from vault.access import export_scope
    from vault.derived import require_current_in_service
    from vault.index.indexer import SearchIndex
    from vault.restore.completeness import seal
    from vault.restore.export import export_data, export_records, write_export
    from vault.restore.stream import directory_members, files_of, tar_stream

    query = _str(params, "query")
    custodian, fmt = _opt(params, "custodian"), _opt(params, "format") or "eml"
    dedupe, path = _bool(params, "dedupe"), _opt(params, "path") or "(the caller's)"
    require_current_in_service(service, with_index=True)
    index = SearchIndex.of(service.config)
    work = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX, dir=service.config.home))
    try:
        with _reader(service) as vault:
            scope = export_scope(vault, caller, custodian)
            records, found = export_records(
                vault, index, query, scope=scope, custodian=custodian, dedupe=dedupe, at=_opt(params, "at")
            )
            production = None
            if _opt(params, "load_file"):
                from vault.restore.loadfile import Production

                production = Production(
                    _str(params, "load_file"), _opt(params, "prefix") or "", int(params.get("start") or 1)
                )
            report = write_export(
                vault, records, work / "export", fmt, query=query, actor=caller.actor, production=production
            )
        _audit(service, caller, Kind.EXPORT_MADE, None, export_data(query, found, fmt, dedupe, path, report))
        seal(service.config, work / "export", report.manifest_sha256)  # the signed entry's proof
        files = files_of(work / "export")
        head = {"kind": "export", "members": len(files), **asdict(report), "path": path, "audit": "recorded"}
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Stream(
        tar_stream(head, directory_members(work / "export", files)),
        close=lambda: shutil.rmtree(work, ignore_errors=True),
    )


EXPORT_PREFIX = ".export-"  # the service's private export directories in the home


def restore(service: ServiceHandle, caller: Caller, params: dict) -> Stream:
    """A folder as it was at a time, streamed to the caller (a tar of its messages with
    their flags, UIDs and internal dates, vault/restore/stream.py), whose vaultctl writes it
    into the target the caller named (a Maildir, an mbox, an IMAP folder) with the caller's
    own permissions and credentials. Admins restore any folder, users their own; reviewers
    export instead. Audited before the first message leaves."""
    from vault.access import restore_scope
    from vault.derived import require_current_in_service
    from vault.model import parse_time
    from vault.restore.pointintime import (
        messages_or_unreadable,
        purged_of,
        removed_of,
        restore_data,
        snapshot,
    )
    from vault.restore.stream import restore_members, tar_stream

    mailbox = _str(params, "mailbox")
    uid = params.get("uid")
    if uid is not None and (not isinstance(uid, int) or isinstance(uid, bool) or uid < 1):
        raise BadRequest("'uid' must be a positive integer")
    try:
        when = parse_time(_opt(params, "at") or "now")
    except ValueError as e:
        raise BadRequest(f"'at': {e}") from None
    target = _opt(params, "target") or "(the caller's)"
    require_current_in_service(service, with_index=False)
    with _reader(service) as vault:
        scope = restore_scope(vault, caller, mailbox)
        snap = snapshot(vault, mailbox, when, uid, visible=scope.folder)
        removed = removed_of(vault, purged_of(snap))
    purged = purged_of(snap)
    count = len(snap.items) - len(purged)
    data = {**restore_data(snap, target, count, len(purged)), "delivery": "streamed to the caller"}
    _audit(service, caller, Kind.RESTORE_DONE, snap.mailbox_id, data)
    head = {
        "kind": "restore",
        "members": count,
        "mailbox": snap.mailbox,
        "mailbox_id": snap.mailbox_id,
        "at": snap.at,
        "uid": snap.uid,
        "purged": purged,
        "removed": removed,
        "audit": "recorded",
    }

    def chunks() -> Iterator[bytes]:
        with _reader(service) as reader:
            yield from tar_stream(head, restore_members(messages_or_unreadable(reader, snap)))

    return Stream(chunks())


def show(service: ServiceHandle, caller: Caller, params: dict) -> Stream:
    """One archived message's bytes (vault/restore/show.py), streamed to the caller, whose
    vaultctl writes them where the caller asked; a ``mail.read`` entry before they leave."""
    from vault.access import mail_scope
    from vault.restore.show import read_item, show_data

    item = _str(params, "item")
    with _reader(service) as vault:
        scope = mail_scope(vault, caller, f"read {item}")
        row, data = read_item(vault, scope, item)
    _audit(service, caller, Kind.MAIL_READ, item, show_data(row, "cli"))
    return Stream(iter([data]), content_type="message/rfc822")


def restore_folders(service: ServiceHandle, caller: Caller, params: dict) -> list[str]:
    """The folders of a user's whole restore (``user``) as they were named at ``at``; the
    caller then restores each (``restore``). A user's own, an admin's anyone's."""
    from vault.access import restore_scope
    from vault.model import parse_time
    from vault.restore.pointintime import user_folders

    user = _str(params, "user")
    try:
        when = parse_time(_opt(params, "at") or "now")
    except ValueError as e:
        raise BadRequest(f"'at': {e}") from None
    with _reader(service) as vault:
        restore_scope(vault, caller, f"user/{user}")
        return user_folders(vault, user, when)


def ls(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """The folders the caller may see (vault/browse.py)."""
    from vault.access import mail_scope
    from vault.browse import folders

    with _reader(service) as vault:
        scope = mail_scope(vault, caller, "list folders")
        return folders(vault, scope, include_deleted=_bool(params, "all"))


def log(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """A folder's or an item's changelog, within what the caller may see (vault/browse.py)."""
    from vault.access import mail_scope
    from vault.browse import changelog

    mailbox, item = _opt(params, "mailbox"), _opt(params, "item")
    if (mailbox is None) == (item is None):
        raise BadRequest("give exactly one of 'mailbox' or 'item'")
    with _reader(service) as vault:
        scope = mail_scope(vault, caller, f"read the changelog of {mailbox or item}")
        return [e.to_json() for e in changelog(vault, scope, mailbox=mailbox, item=item)]


def hold_list(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """The holds: admins and auditors all, a reviewer those naming them (vault/access.py)."""
    from vault.access import visible_holds

    with _reader(service) as vault:
        return visible_holds(vault, caller, "list holds", everything=_bool(params, "all"))


def hold_show(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    from vault.access import visible_holds

    matter = _str(params, "matter")
    action = f"see hold {matter!r}"
    with _reader(service) as vault:
        found = [d for d in visible_holds(vault, caller, action, everything=True) if d["matter"] == matter]
        if not found:
            if any(d["matter"] == matter for d in vault.catalog.hold_data()):
                raise Forbidden(caller, action, "not a reviewer of that matter")
            raise LookupError(f"no hold named {matter!r}")
    return found[-1]


def requests(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """Four-eyes requests of one flow ("erasure" or "release"), as vault/access.py allows."""
    from vault.access import visible_requests
    from vault.policy.approval import BY_KEY

    flow = BY_KEY.get(_str(params, "flow"))
    if flow is None:
        raise BadRequest(f"'flow' must be one of {', '.join(BY_KEY)}")
    with _reader(service) as vault:
        return visible_requests(
            vault, caller, flow, f"list {flow.name} requests", everything=_bool(params, "all")
        )


def explain(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """``retention explain``: admins and auditors any item, others the items they may read;
    holds are named to those who may see them (vault/access.py)."""
    from vault.access import hold_shown, require_explain
    from vault.model import now, parse_time
    from vault.policy.explain import explain_item

    item = _str(params, "item")
    try:
        when = parse_time(params["as_of"]) if params.get("as_of") else now()
    except (TypeError, ValueError) as e:
        raise BadRequest(f"'as_of': {e}") from None
    action = f"explain the retention of {item}"

    def decide(vault) -> dict:  # the writer's index, as the sweep's: live ingest's lag included
        row = vault.catalog.item(item)
        if row is None:
            raise LookupError(f"no item {item!r} in the archive")
        require_explain(vault, caller, row, action)
        return {"text": explain_item(vault, item, when, shown=hold_shown(caller))}

    return service.write(decide)


def rebuild(service: ServiceHandle, caller: Caller, params: dict) -> None:
    """Refused while the service runs (admins are told why): a rebuild replaces the catalog
    and the search index, which the committer, the workers and every reader hold open."""
    caller.require("rebuild the derived views")
    raise Conflict(
        "a rebuild replaces the catalog and the search index, which the running service, its "
        "workers and readers have open: stop the vault service (systemctl stop vault.service), "
        "run 'vaultctl rebuild', then start it again"
    )


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
    from vault.verify import check_vault, unreadable_only

    caller.require("verify the vault", AUDITOR)
    with Vault.open(service.config, catch_up=False, check_witnesses=False) as vault:
        problems = check_vault(vault, read_data=bool(params.get("read_data")))
        size, witnesses = vault.ledger.size, len(vault.witnesses.witnesses)
        messages_only = unreadable_only(vault, problems)
    return {
        "ok": not problems,
        "unreadable_only": messages_only,
        "entries": size,
        "witnesses": witnesses,
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
    "export": export,
    "restore": restore,
    "restore.folders": restore_folders,
    "show": show,
    "ls": ls,
    "log": log,
    "hold.list": hold_list,
    "hold.show": hold_show,
    "requests": requests,
    "retention.explain": explain,
    "rebuild": rebuild,
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
