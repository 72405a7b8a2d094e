"""The operations the web pages need beyond vault/service/ops.py, in the same form:
``op(service, caller, params) -> result``, the caller's roles checked first, every refusal
an ``access.refused`` entry (recorded by the dispatcher, vault/service/daemon.py), every read
of mail a ``mail.read`` entry recorded before the answer leaves.

Who may read what is vault/access.py's, as for every other operation: an admin any item; a
user their own folders; a reviewer the items their matters cover; an auditor none. Restores
are an admin's or a user's of their own folders (``restore_scope``). Review (matters, tags,
the export of tagged items) is for the matter's reviewers and admins.
"""

from __future__ import annotations

import imaplib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from weakref import WeakKeyDictionary

from vault.access import mail_scope
from vault.entries import Kind
from vault.identity import ADMIN, REVIEWER, Caller, Forbidden
from vault.purge import gone
from vault.service.ops import EXPORT_PREFIX, BadRequest, ServiceHandle, _audit, _bool, _opt, _reader, _str

PAGE_MAX = 200


def _int(params: dict, key: str, default: int, lo: int = 0, hi: int | None = None) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        raise BadRequest(f"{key!r} must be an integer from {lo}" + (f" to {hi}" if hi is not None else ""))
    return value


def _when(params: dict, key: str = "at") -> str:
    from vault.model import format_time, now, parse_time

    text = _opt(params, key)
    try:
        return format_time(parse_time(text) if text else now())
    except ValueError as e:
        raise BadRequest(f"{key!r}: {e}") from None


def _read_data(via: str, method: str, **what: Any) -> dict:
    return {"via": via, "method": method, **{k: v for k, v in what.items() if v is not None}}


# ---------------------------------------------------------------- whose folders


def _owner(caller: Caller, params: dict, action: str) -> str:
    """Whose folders: the caller's own, or (admins) anyone's."""
    user = _opt(params, "user") or caller.login
    if user.lower() != caller.login.lower():
        caller.require(f"{action} of {user}")
    return user


def _item_row(vault, item: str) -> dict:
    row = vault.catalog.item(item)
    if row is None:
        raise LookupError(f"no item {item!r} in the archive")
    return row


# ---------------------------------------------------------------- self-service


def browse(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A user's folders as they were at ``at``, and with ``mailbox`` that folder's messages
    then (a page of them: ``offset``, ``limit``), headers read from the archive."""
    from vault.mailview import summary
    from vault.model import custodian_of

    at = _when(params)
    user = _opt(params, "user") or caller.login
    mailbox = _opt(params, "mailbox")
    offset, limit = _int(params, "offset", 0), _int(params, "limit", 50, 1, PAGE_MAX)
    with _reader(service) as vault:
        scope = mail_scope(vault, caller, f"browse {mailbox or 'folders'}")
        if user.casefold() != caller.login.casefold():
            scope.require_custodian(user, f"browse {user}'s folders")
        folders = []
        for f in vault.catalog.folders():
            name = vault.catalog.folder_name(f["mailbox_id"], at)
            if name is None or (custodian_of(name) or "").lower() != user.lower():
                continue
            if f["created_at"] > at or (f["deleted_at"] and f["deleted_at"] <= at):
                continue
            folders.append(
                {
                    "mailbox": name,
                    "mailbox_id": f["mailbox_id"],
                    "messages": len(vault.catalog.items_at(f["mailbox_id"], at)),
                }
            )
        folders.sort(key=lambda f: f["mailbox"])
        answer: dict = {"user": user, "at": at, "folders": folders}
        if mailbox is None:
            return answer
        mailbox_id = vault.catalog.folder_id(mailbox, at)
        if mailbox_id is None:
            raise LookupError(f"no folder {mailbox!r} at {at}")
        name = vault.catalog.folder_name(mailbox_id, at) or mailbox
        scope.require_folder(name, f"browse {name}")
        items = vault.catalog.items_at(mailbox_id, at)
        if scope.role == REVIEWER:  # only what their matters cover (custodians, dates)
            items = [i for i in items if scope.item(vault, i)]
        newest = sorted(items, key=lambda i: (i["internal_date"] or i["appended_at"], i["uid"]), reverse=True)
        page = newest[offset : offset + limit]
        rows = []
        for it in page:
            head = summary(vault.store.get(it["blob"])) if not it["purged_at"] else {}
            rows.append(
                {
                    "item": it["item"],
                    "uid": it["uid"],
                    "size": it["size"],
                    "flags": it["flags"],
                    "internal_date": it["internal_date"],
                    "purged": bool(it["purged_at"]),
                    **head,
                }
            )
    _audit(
        service,
        caller,
        Kind.MAIL_READ,
        mailbox_id,
        _read_data("web", "browse", user=user, mailbox=name, at=at, items=[r["item"] for r in rows]),
    )
    return {**answer, "mailbox": name, "mailbox_id": mailbox_id, "total": len(items), "messages": rows}


def message(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """One archived message for reading: headers, its text, its attachments listed; where it
    sits, its flags and its changelog."""
    from dataclasses import asdict

    from vault.mailview import view

    item = _str(params, "item")
    with _reader(service) as vault:
        row = _item_row(vault, item)
        mail_scope(vault, caller, f"read {item}").require_item(vault, row, f"read {item}")
        if row["purged_at"]:
            raise LookupError(gone(vault, item))
        shown = view(vault.store.get(row["blob"]))
        log = [e.to_json() for e in (vault.ledger.get(s) for s in vault.catalog.log_seqs(item=item))]
    _audit(
        service,
        caller,
        Kind.MAIL_READ,
        item,
        _read_data("web", "message", mailbox=row["mailbox"], items=[item]),
    )
    return {
        "item": item,
        "mailbox": row["mailbox"],
        "uid": row["uid"],
        "size": row["size"],
        "flags": row["flags"],
        "internal_date": row["internal_date"],
        "appended_at": row["appended_at"],
        "expunged_at": row["expunged_at"],
        "headers": shown.headers,
        "text": shown.text,
        "from_html": shown.from_html,
        "attachments": [asdict(a) for a in shown.attachments],
        "log": [
            {"seq": e["seq"], "time": e["time"], "kind": e["kind"], "actor": e.get("actor")} for e in log
        ],
    }


def raw_part(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A message's attachment (``index``) or, without one, the whole message: bytes for a
    download."""
    from vault.mailview import attachment

    item = _str(params, "item")
    index = params.get("index")
    with _reader(service) as vault:
        row = _item_row(vault, item)
        mail_scope(vault, caller, f"download {item}").require_item(vault, row, f"download {item}")
        if row["purged_at"]:
            raise LookupError(gone(vault, item))
        data = vault.store.get(row["blob"])
    if index is None:
        name, ctype, body = f"{item.replace(':', '-')}.eml", "message/rfc822", data
    else:
        part, body = attachment(data, _int(params, "index", 0))
        name, ctype = part.filename, part.content_type
    _audit(
        service,
        caller,
        Kind.MAIL_READ,
        item,
        _read_data("web", "download", mailbox=row["mailbox"], items=[item], attachment=index),
    )
    return {"filename": name, "content_type": ctype, "data": body}


_IMAP_LOGINS: WeakKeyDictionary = WeakKeyDictionary()  # service -> its restore logins' throttle


def _imap_throttle(service: ServiceHandle):
    """The throttle of the restore form's IMAP logins: a stolen web session must not try
    the user's mail password at full speed (the same limits as the web's own logins)."""
    from vault.web.sessions import LoginThrottle

    if service not in _IMAP_LOGINS:
        web = service.config["web"]
        _IMAP_LOGINS[service] = LoginThrottle(web["login_attempts"], web["login_window_minutes"] * 60.0)
    return _IMAP_LOGINS[service]


def restore_live(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A message (``uid``) or a whole folder as it was at ``at`` put back into the user's
    live mailbox: IMAP APPEND into ``[web] restore_folder`` on ``[web] restore_imap``, logged
    in as the user with the password they give now (used for this one login, kept nowhere),
    each message with its flags and internal date then."""
    from vault.access import restore_scope
    from vault.derived import require_current_in_service
    from vault.model import custodian_of, parse_time
    from vault.restore.imap_target import ImapTarget, ImapTargetError
    from vault.restore.pointintime import RestoreError, messages_of, purged_of, snapshot

    web = service.config["web"]
    if not web["restore_imap"]:
        raise BadRequest("self-service restore is off: [web] restore_imap names no IMAP server")
    user = _owner(caller, params, "restore the folders")
    mailbox, password = _str(params, "mailbox"), _str(params, "password")
    uid = params.get("uid")
    if uid is not None:
        uid = _int(params, "uid", 1, 1)
    at = _when(params)
    require_current_in_service(service, with_index=False)  # never from a damaged catalog
    with _reader(service) as vault:
        scope = restore_scope(vault, caller, mailbox)
        try:
            snap = snapshot(vault, mailbox, parse_time(at), uid, visible=scope.folder)
        except RestoreError as e:
            raise LookupError(str(e)) from None
        name = vault.catalog.folder_name(snap.mailbox_id, at) or mailbox
        scope.require_folder(name, f"restore {name}")  # its name then, too
        if (custodian_of(name) or "").casefold() != user.casefold():
            raise Forbidden(caller, f"restore {name} into {user}'s mailbox", "the folder is not theirs")
        server = urlsplit(web["restore_imap"])
        if server.scheme not in ("imap", "imaps") or not server.hostname:
            raise BadRequest(f"[web] restore_imap {web['restore_imap']!r}: expected imap[s]://HOST[:PORT]")
        netloc = server.hostname + (f":{server.port}" if server.port else "")
        throttle = _imap_throttle(service)
        if throttle.blocked(user, "imap"):
            raise BadRequest(
                f"too many failed logins to the mail server as {user}: wait a while, then try again"
            )
        try:
            folder = _personal_folder(server, user, password, web["restore_folder"])
            spec = f"{server.scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{netloc}/{quote(folder)}"
            target = ImapTarget(spec)
        except (ImapTargetError, OSError, imaplib.IMAP4.error) as e:
            if isinstance(e, imaplib.IMAP4.error):  # the server said no: a wrong password
                throttle.failed(user, "imap")
            raise BadRequest(
                f"the mail server refused the login as {user}: {str(e).replace(password, '***')}"
            ) from None
        throttle.succeeded(user)
        restored: list[str] = []
        purged = purged_of(snap)
        size, failure = 0, ""
        data = {
            "mailbox": name,
            "at": snap.at,
            "target": f"{server.scheme}://{user}@{netloc}/{folder}",
            "folder": folder,
            "restored": len(snap.items) - len(purged),  # planned: what is about to leave
            "purged": len(purged),
            "uid": uid,
            "via": "web",
        }
        # audit first, as every restore: recorded before the first APPEND, so a restore that
        # cannot be recorded puts nothing into the mailbox
        _audit(service, caller, Kind.RESTORE_DONE, snap.mailbox_id, data)
        try:
            for m in messages_of(vault, snap):
                try:
                    target.add(
                        m.data, m.flags, parse_time(m.internal_date) if m.internal_date else None, m.uid
                    )
                except (ImapTargetError, OSError, imaplib.IMAP4.error) as e:
                    failure = f"the mail server stopped the restore after {len(restored)} messages: {e}"
                    break
                restored.append(m.item)
                size += len(m.data)
        finally:
            target.close()
    if failure:  # and what did reach it, when the server stopped short
        _audit(
            service,
            caller,
            Kind.RESTORE_DONE,
            snap.mailbox_id,
            {**data, "restored": len(restored), "error": failure},
        )
        raise BadRequest(failure)
    return {**data, "restored": len(restored), "items": restored, "bytes": size}


def _personal_folder(server, user: str, password: str, folder: str) -> str:
    """``folder`` in the user's personal namespace as the server names it (RFC 2342
    NAMESPACE): ``INBOX/Restored`` on a Cyrus with altnamespace off, ``Restored`` with it on."""
    cls = imaplib.IMAP4_SSL if server.scheme == "imaps" else imaplib.IMAP4
    imap = cls(server.hostname, server.port or (993 if server.scheme == "imaps" else 143), timeout=30)
    try:
        imap.login(user, password)
        typ, data = imap.namespace()
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    found = re.match(rb'\(\("([^"]*)" (?:"([^"]*)"|NIL)\)', data[0] or b"") if typ == "OK" else None
    if found is None:
        return folder
    prefix, sep = found.group(1).decode(), (found.group(2) or b"/").decode()
    name = folder.replace("/", sep)
    return name if not prefix or name.startswith(prefix) else prefix + name


# ---------------------------------------------------------------- review


def matters(service: ServiceHandle, caller: Caller, params: dict) -> list[dict]:
    """The active matters the caller reviews (admins: every active one)."""
    from vault.policy.decide import holds_of
    from vault.policy.place import matters_of

    caller.require("review matters", REVIEWER)
    with _reader(service) as vault:
        holds = (
            [h for h in holds_of(vault) if h.active()]
            if caller.has(ADMIN)
            else matters_of(vault, caller.login)
        )
    return [h.to_data() for h in holds]


def _matter(vault, caller: Caller, matter: str, action: str):
    from vault.policy.decide import holds_of

    found = [h for h in holds_of(vault) if h.matter == matter and h.active()]
    if not found:
        raise LookupError(f"no active matter {matter!r}")
    hold = found[-1]
    if not caller.has(ADMIN) and caller.login.lower() not in {r.lower() for r in hold.reviewers}:
        raise Forbidden(caller, action, f"not a reviewer of matter {matter!r}")
    return hold


def tag(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """Tag an item the matter covers (``review.tagged``)."""
    from vault.policy.decide import facts_of
    from vault.policy.holds import applies_to
    from vault.review import TagError, tag_data

    caller.require("tag items", REVIEWER)
    matter, item, what = _str(params, "matter"), _str(params, "item"), _str(params, "tag")
    note = _opt(params, "note") or ""
    action = f"tag {item} in {matter!r}"
    with _reader(service) as vault:
        hold = _matter(vault, caller, matter, action)
        row = _item_row(vault, item)
        if not applies_to(hold, facts_of(vault, row)):
            raise Forbidden(caller, action, f"{item} is outside matter {matter!r} (its custodians and dates)")
    try:
        data = tag_data(matter, what, note)
    except TagError as e:
        raise BadRequest(str(e)) from None
    _audit(service, caller, Kind.REVIEW_TAGGED, item, data)
    return {"item": item, **data}


def tags(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """A matter's current tags (``matter``), or one item's in every matter (``item``)."""
    from vault.review import item_tags, matter_tags

    caller.require("see review tags", REVIEWER)
    matter, item = _opt(params, "matter"), _opt(params, "item")
    with _reader(service) as vault:
        if matter is not None:
            _matter(vault, caller, matter, f"see the tags of {matter!r}")
            return {"matter": matter, "items": matter_tags(vault, matter)}
        if item is None:
            raise BadRequest("give 'matter' or 'item'")
        row = _item_row(vault, item)
        action = f"see the tags of {item}"
        mail_scope(vault, caller, action).require_item(vault, row, action)
        found = item_tags(vault, item)
        if not caller.has(ADMIN):
            mine = {h.matter for h in _matters_of(vault, caller)}
            found = {m: t for m, t in found.items() if m in mine}
        return {"item": item, "tags": found}


def _matters_of(vault, caller: Caller):
    from vault.policy.place import matters_of

    return matters_of(vault, caller.login)


def export_tagged(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The items of a matter carrying one of ``tags`` (default: responsive), exported through
    the export engine (vault/restore/export.py: messages, manifests with inclusion proofs,
    checkpoint, verifier key) and zipped in a private directory of the home; the answer names
    the zip, which the caller sends and then removes (``cleanup``)."""
    from vault.access import export_scope
    from vault.derived import require_current_in_service
    from vault.mailview import summary
    from vault.model import custodian_of
    from vault.restore.completeness import seal
    from vault.restore.export import write_export
    from vault.review import TAGS, matter_tags

    matter = _str(params, "matter")
    wanted = params.get("tags") or ["responsive"]
    if not isinstance(wanted, list) or not all(t in TAGS for t in wanted):
        raise BadRequest(f"'tags' must be a list of {', '.join(TAGS)}")
    fmt = _opt(params, "format") or "eml"
    require_current_in_service(service, with_index=False)  # never from a damaged catalog
    work = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX, dir=service.config.home))
    try:
        with _reader(service) as vault:
            export_scope(vault, caller, None)  # reviewers and admins export; users restore
            _matter(vault, caller, matter, f"export matter {matter!r}")
            tagged = {i: t for i, t in matter_tags(vault, matter).items() if t["tag"] in wanted}
            records = []
            for item in sorted(tagged):
                row = vault.catalog.item(item)
                if row is None or row["purged_at"]:
                    continue
                head = summary(vault.store.get(row["blob"]))
                records.append(
                    {
                        "item": item,
                        "blob": row["blob"],
                        "custodians": sorted({c for c in [custodian_of(row["mailbox"])] if c}),
                        "folders": [row["mailbox"]],
                        "internal_date": row["internal_date"],
                        "appended_at": row["appended_at"],
                        "subject": head.get("subject", ""),
                        "from": head.get("from", ""),
                        "ledger_seq": row["appended_seq"],
                        "tag": tagged[item]["tag"],
                    }
                )
            query = f"matter:{matter} tags:{','.join(wanted)}"
            report = write_export(vault, records, work / "export", fmt, query=query, actor=caller.actor)
        _audit(
            service,
            caller,
            Kind.EXPORT_MADE,
            None,
            {
                "query": query,
                "matter": matter,
                "tags": wanted,
                "format": fmt,
                "via": "web",
                "path": "(downloaded)",
                "items": report.items,
                "manifest_sha256": report.manifest_sha256,
            },
        )
        seal(service.config, work / "export", report.manifest_sha256)  # the signed entry's proof
        archive = work / f"{matter}-export.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted((work / "export").rglob("*")):
                if path.is_file():
                    z.write(path, str(path.relative_to(work / "export")))
        shutil.rmtree(work / "export")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {
        "path": str(archive),
        "filename": archive.name,
        "items": report.items,
        "manifest_sha256": report.manifest_sha256,
        "cleanup": lambda: shutil.rmtree(work, ignore_errors=True),
    }


# ---------------------------------------------------------------- SNIFF


def sniff(service: ServiceHandle, caller: Caller, params: dict) -> dict:
    """The SNIFF figures: a user their own beside the site median; an admin every user's
    (``site``) or one named (``user``)."""
    from vault.sniff import SpamCache, dashboard

    site = _bool(params, "site")
    user = _opt(params, "user") or caller.login
    if site or user.lower() != caller.login.lower():
        caller.require("see other users' mail figures")
    weeks = _int(params, "weeks", 12, 1, 104)
    config = service.config
    cache = SpamCache(config.path("web", "sniff_cache_path"))
    try:
        with _reader(service) as vault:
            board = dashboard(vault, cache, large_bytes=config["web"]["large_message_bytes"], weeks=weeks)
    finally:
        cache.close()
    out = board.to_json()
    if not site:
        out["users"] = {
            user: out["users"].get(user)
            or [dict.fromkeys(("received", "spam", "large", "volume"), 0)] * len(board.weeks)
        }
    out["large_bytes"] = config["web"]["large_message_bytes"]
    return out


WEB_OPS: dict[str, Callable[[ServiceHandle, Caller, dict], Any]] = {
    "browse": browse,
    "message": message,
    "message.raw": raw_part,
    "restore.live": restore_live,
    "review.matters": matters,
    "review.tag": tag,
    "review.tags": tags,
    "review.export": export_tagged,
    "sniff": sniff,
}
