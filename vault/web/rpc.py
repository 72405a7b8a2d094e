"""Bonnie's client API: JSON-RPC 2.0 as Roundcube's libkolab calls it (``POST /api/rpc``).

The wire (what libkolab's ``kolab_bonnie_api_client`` sends):
- HTTP Basic with the API user's name and password (vault/web/apiusers.py);
- ``X-Request-User``: the logged-in end user (their Roundcube login);
- ``X-Request-Sign``: hex HMAC-SHA256, keyed with the API user's secret, of
  ``X-Request-User + ":" + the raw request body`` (every method but ``system.keygen``);
- a body ``{"jsonrpc": "2.0", "method": M, "params": {...}, "id": N}``: named params only;
  libkolab sends absent optional ones as null.
Errors are JSON-RPC errors with HTTP 200: -32700 not JSON, -32600 not a valid request (also a
missing or wrong signature), -32601 no such method, -32602 bad params (also: no such folder,
object or revision), -32603 internal error, -32001 the end user may not read that folder.
A wrong Basic login is HTTP 401 (app.py), before any of this.

Methods: ``mail.changelog(mailbox, msguid)``; for each type of API_TYPES (event, task, note,
contact) ``<type>.changelog(uid, mailbox[, msguid])``, ``.created``, ``.lastmodified``,
``.get(uid, rev, mailbox)``, ``.diff(uid, rev1, rev2, mailbox[, instance])``,
``.rawdata(uid, mailbox, rev)``; ``system.keygen()``. Folder names are user-relative
(vault/groupware/mailboxes.py). Every read is a ``mail.read`` ledger entry (the end user as the
actor, the API user beside it) recorded before the answer leaves; every refusal an
``access.refused`` entry.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vault.entries import Kind
from vault.groupware import changelog as cl
from vault.groupware.diff import diff as diff_objects
from vault.groupware.kolab import API_TYPES, KolabError, parse_message, xml_part
from vault.groupware.mailboxes import Namespace, NoSuchFolder, resolve
from vault.groupware.objects import ObjectIndex
from vault.model import ItemId

log = logging.getLogger("vault.web.rpc")

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)
FORBIDDEN = -32001


class RpcError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Call:
    """One request: who (the API user, the end user, whether the signature held) and the
    service's hooks: ``write(fn)`` runs ``fn(vault)`` with the vault's one writer."""

    config: Any
    api_user: str
    end_user: str
    signed: bool
    write: Callable[[Callable[[Any], Any]], Any]

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.config["groupware"]["default_domain"])

    def record(self, kind: str, item: str | None, data: dict) -> None:
        """An audit entry, committed before the caller answers; the end user is the actor."""
        from vault.archive import actor_of

        actor = actor_of(self.config, self.end_user or f"api:{self.api_user}")

        def write(vault) -> None:
            vault.record(kind, item=item, data=data, actor=actor)
            vault.commit()

        self.write(write)

    def refuse(self, method: str, why: str, code: int = FORBIDDEN, message: str | None = None) -> RpcError:
        """The refusal, recorded (``access.refused``), as the error to answer with."""
        self.record(
            Kind.ACCESS_REFUSED,
            None,
            {
                "operation": f"rpc {method}",
                "action": method,
                "login": self.end_user,
                "api_user": self.api_user,
                "roles": [],
                "why": why,
            },
        )
        return RpcError(code, message or why)


# ---------------------------------------------------------------- parameters

_ABSENT = object()


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # str or int
    required: bool = True


def _params(method: str, spec: tuple[Param, ...], given: Any) -> dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise RpcError(INVALID_PARAMS, f"{method}: named params only (an object), not {type(given).__name__}")
    known = {p.name for p in spec}
    extra = sorted(set(given) - known)
    if extra:
        raise RpcError(
            INVALID_PARAMS,
            f"{method}: unknown param(s) {', '.join(extra)}; takes {', '.join(sorted(known)) or 'none'}",
        )
    out: dict[str, Any] = {}
    for p in spec:
        value = given.get(p.name)
        if value is None or value == "":
            if p.required:
                raise RpcError(INVALID_PARAMS, f"{method}: param {p.name!r} is required")
            out[p.name] = None
            continue
        if p.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
                raise RpcError(INVALID_PARAMS, f"{method}: param {p.name!r} must be a whole number")
            value = int(value)
        elif not isinstance(value, str):
            raise RpcError(INVALID_PARAMS, f"{method}: param {p.name!r} must be a string")
        out[p.name] = value
    return out


# ---------------------------------------------------------------- reading the archive


class Reader:
    """The archive as one call reads it: the vault opened read-only, the object index."""

    def __init__(self, call: Call, method: str):
        from vault.archive import Vault

        self.call, self.method = call, method
        self.vault = Vault.open(call.config, catch_up=False)
        self.objects = ObjectIndex.from_config(call.config)
        self.people = cl.People(call.config)

    def close(self) -> None:
        self.objects.close()
        self.vault.close()

    def folder(self, mailbox: str) -> tuple[str, str]:
        """(mailboxID, archive name) of a user-relative folder the end user may read."""
        call = self.call
        try:
            mailbox_id, name = resolve(self.vault.catalog, call.namespace, call.end_user, mailbox)
        except NoSuchFolder as e:
            raise RpcError(INVALID_PARAMS, str(e)) from None
        folder = self.vault.catalog.folder(mailbox_id) or {}
        acl = json.loads(folder["acl"]) if folder.get("acl") else None
        if not call.namespace.may_read(call.end_user, name, acl if isinstance(acl, dict) else None):
            raise call.refuse(
                self.method,
                f"{call.end_user} may not read {name} (not theirs, and its ACL does not share it)",
            )
        return mailbox_id, name

    def revisions(
        self, kind: str, mailbox_id: str, uid: str, msguid: int | None
    ) -> tuple[str, list[cl.Revision]]:
        """The object's UID (found through ``msguid`` when ``uid`` is unknown) and revisions."""
        rows = cl.object_rows(self.vault, self.objects, mailbox_id, kind, uid)
        if not rows and msguid is not None:  # the client knows the message, not the UID
            found = cl.uid_of_message(self.vault, self.objects, mailbox_id, msguid)
            if found:
                uid, rows = found, cl.object_rows(self.vault, self.objects, mailbox_id, kind, found)
        if not rows:
            raise RpcError(INVALID_PARAMS, f"no {kind} {uid!r} in that folder of the archive")
        return uid, cl.revisions(self.vault, rows, self.people)

    def content(self, revision: cl.Revision) -> bytes:
        if revision.purged:
            raise RpcError(
                INVALID_PARAMS,
                f"revision {revision.rev} was purged (a retention sweep or an erasure): its content is gone",
            )
        return self.vault.store.get(revision.blob)


def _revision(revisions: list[cl.Revision], rev: int) -> cl.Revision:
    for r in revisions:
        if r.rev == rev:
            return r
    known = ", ".join(str(r.rev) for r in revisions)
    raise RpcError(INVALID_PARAMS, f"no revision {rev} (this object has {known})")


def _read(call: Call, method: str, name: str, mailbox_id: str, **what: Any) -> None:
    call.record(
        Kind.MAIL_READ,
        mailbox_id,
        {
            "via": "rpc",
            "method": method,
            "api_user": call.api_user,
            "user": call.end_user,
            "mailbox": name,
            **what,
        },
    )


# ---------------------------------------------------------------- the methods

UID, MAILBOX, MSGUID = Param("uid", str), Param("mailbox", str), Param("msguid", int, False)
REV = Param("rev", int)


def object_method(kind: str, action: str) -> tuple[tuple[Param, ...], Callable[[Call, dict], Any]]:
    method = f"{kind}.{action}"
    spec: tuple[Param, ...]
    if action in ("changelog", "created", "lastmodified"):
        spec = (UID, MAILBOX, MSGUID)
    elif action in ("get", "rawdata"):
        spec = (UID, REV, MAILBOX, MSGUID)
    else:  # diff
        spec = (UID, Param("rev1", int), Param("rev2", int), MAILBOX, MSGUID, Param("instance", str, False))

    def run(call: Call, p: dict) -> Any:
        reader = Reader(call, method)
        try:
            mailbox_id, name = reader.folder(p["mailbox"])
            uid, revs = reader.revisions(kind, mailbox_id, p["uid"], p["msguid"])
            if action == "changelog":
                _read(call, method, name, mailbox_id, uid=uid, revisions=[r.rev for r in revs])
                return {"uid": uid, "changes": [r.to_json(p["mailbox"]) for r in revs]}
            if action in ("created", "lastmodified"):
                r = revs[0] if action == "created" else revs[-1]
                _read(call, method, name, mailbox_id, uid=uid, revisions=[r.rev])
                return {"uid": uid, **r.to_json(p["mailbox"])}
            if action in ("get", "rawdata"):
                r = _revision(revs, p["rev"])
                raw = reader.content(r)
                _read(call, method, name, mailbox_id, uid=uid, revisions=[r.rev], items=[r.item])
                if action == "rawdata":
                    return raw.decode("utf-8", errors="replace")
                xml = xml_part(raw).decode("utf-8", errors="replace")
                return {"uid": uid, "rev": r.rev, "xml": xml, "mailbox": p["mailbox"]}
            a, b = _revision(revs, p["rev1"]), _revision(revs, p["rev2"])
            old, new = parse_message(reader.content(a)), parse_message(reader.content(b))
            try:
                result = diff_objects(old, new, b.rev, p["instance"])
            except LookupError as e:
                raise RpcError(INVALID_PARAMS, str(e)) from None
            result["uid"] = uid
            _read(call, method, name, mailbox_id, uid=uid, revisions=[a.rev, b.rev], items=[a.item, b.item])
            return result
        except KolabError as e:
            raise RpcError(INTERNAL_ERROR, f"the archived object cannot be read: {e}") from None
        finally:
            reader.close()

    return spec, run


def mail_changelog(call: Call, p: dict) -> dict:
    method = "mail.changelog"
    reader = Reader(call, method)
    try:
        mailbox_id, name = reader.folder(p["mailbox"])
        folder = reader.vault.catalog.folder(mailbox_id) or {}
        rows = [r for r in reader.vault.catalog.items_in(mailbox_id) if r["uid"] == p["msguid"]]
        current = [r for r in rows if r["uidvalidity"] == folder.get("uidvalidity")] or rows
        if not current:
            raise RpcError(INVALID_PARAMS, f"no message {p['msguid']} in {p['mailbox']} in the archive")
        item = current[-1]["item"]
        changes = cl.message_changelog(reader.vault, item, reader.people)
        _read(call, method, name, mailbox_id, msguid=p["msguid"], items=[item])
        return {"mailbox": p["mailbox"], "msguid": ItemId.parse(item).uid, "changes": changes}
    finally:
        reader.close()


def keygen(call: Call, p: dict) -> dict:
    """A fresh random secret, for an operator to give an API user (nothing is stored)."""
    return {"key": secrets.token_hex(32)}


METHODS: dict[str, tuple[tuple[Param, ...], Callable[[Call, dict], Any]]] = {
    "mail.changelog": ((MAILBOX, Param("msguid", int)), mail_changelog),
    "system.keygen": ((), keygen),
    **{
        f"{kind}.{action}": object_method(kind, action)
        for kind in API_TYPES
        for action in ("changelog", "created", "lastmodified", "get", "diff", "rawdata")
    },
}
UNSIGNED = frozenset({"system.keygen"})  # libkolab sends it without X-Request-Sign
BAD_SIGNATURE = (
    "invalid request: X-Request-User and X-Request-Sign (hex HMAC-SHA256 of user:body under the "
    "API user's secret) are required and must match"
)


def _error(code: int, message: str, id_: Any = None) -> dict:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id_}


def dispatch(call: Call, body: bytes) -> dict:
    """The JSON-RPC answer to one request body (never raises)."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(PARSE_ERROR, "parse error: the body is not JSON")
    if not isinstance(request, dict):
        return _error(
            INVALID_REQUEST, "invalid request: one JSON-RPC 2.0 request object (batches are not served)"
        )
    id_ = request.get("id")
    method = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
        return _error(INVALID_REQUEST, 'invalid request: jsonrpc must be "2.0" and method a string', id_)
    try:
        if method not in UNSIGNED and not call.signed:
            raise call.refuse(method, "bad request signature", INVALID_REQUEST, BAD_SIGNATURE)
        found = METHODS.get(method)
        if found is None:
            raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
        spec, run = found
        result = run(call, _params(method, spec, request.get("params")))
    except RpcError as e:
        return _error(e.code, e.message, id_)
    except Exception as e:  # a bug, a store error: logged, and said without details
        log.exception("%s failed", method)
        return _error(INTERNAL_ERROR, f"internal error: {type(e).__name__}", id_)
    return {"jsonrpc": "2.0", "result": result, "id": id_}
