"""Mailbox events: create, rename, delete, ACL, subscriptions, quota, modseq.

A folder is its Cyrus mailboxID: a rename changes only its name. Folder state (ACL and
metadata, as the seed design kept them) is recorded as folder.acl / folder.metadata entries
whenever it differs from what the catalog holds; metadata has no event of its own in Cyrus,
so it is read from the collector on create, rename and ACL change.
"""

from __future__ import annotations

from vault.entries import Kind
from vault.ingest.collector.client import MailboxUnknown
from vault.ingest.worker.handlers.common import entry, event_acl, folder_of, folder_state
from vault.ingest.worker.handlers.event import Event, EventError

QUOTA_FIELDS = ("diskQuota", "diskUsed", "maxMessages", "messages")


def _server_metadata(ctx, mailbox_id: str) -> dict | None:
    """The folder's metadata now, or None when the server no longer has the mailbox."""
    try:
        return ctx.collector.folder(mailbox_id).get("metadata") or {}
    except MailboxUnknown:
        return None


def created(ev: Event, ctx) -> list:
    """MailboxCreate: folder.created with name and UIDVALIDITY from the uri, then its ACL
    (vnd.cmu.mailboxACL) and metadata."""
    mailbox_id = ev.mailbox_id
    url = ev.url
    if ctx.catalog.folder(mailbox_id) is not None:
        return []  # already discovered through an earlier event: nothing new
    if not url.mailbox or url.uidvalidity is None:
        raise EventError(f"MailboxCreate uri {ev.get('uri')!r} lacks the name or UIDVALIDITY")
    entries = [
        entry(
            ctx,
            ev,
            Kind.FOLDER_CREATED,
            mailbox_id,
            {
                "name": url.mailbox,
                "uidvalidity": url.uidvalidity,
                "mbtype": ev.get("vnd.cmu.mbtype"),
            },
        )
    ]
    entries += folder_state(ctx, ev, mailbox_id, event_acl(ev), _server_metadata(ctx, mailbox_id), None)
    return entries


def renamed(ev: Event, ctx) -> list:
    """MailboxRename: the same mailboxID under a new name."""
    folder, discovered = folder_of(ctx, ev)
    old = ev.old_url.mailbox
    rename = entry(
        ctx,
        ev,
        Kind.FOLDER_RENAMED,
        folder.mailbox_id,
        {"old": old, "name": folder.name, "uidvalidity": folder.uidvalidity},
    )
    if discovered:
        if old:
            discovered[0].data["name"] = old  # it existed under the old name until now
        return [*discovered, rename]
    row = ctx.catalog.folder(folder.mailbox_id)
    if row["name"] == folder.name:
        return []  # already carries the name: nothing changed
    return [
        rename,
        *folder_state(
            ctx, ev, folder.mailbox_id, event_acl(ev), _server_metadata(ctx, folder.mailbox_id), row
        ),
    ]


def deleted(ev: Event, ctx) -> list:
    """MailboxDelete: every message still in the folder is expunged with it, then
    folder.deleted. A folder the archive never had leaves nothing to record."""
    mailbox_id = ev.mailbox_id
    row = ctx.catalog.folder(mailbox_id)
    if row is None or row["deleted_at"] is not None:
        return []
    name = ev.url.mailbox or row["name"]
    entries = [
        entry(ctx, ev, Kind.MESSAGE_EXPUNGED, item["item"], {"mailbox": name, "reason": "folder deleted"})
        for item in sorted(ctx.catalog.live_items(mailbox_id), key=lambda i: i["uid"])
    ]
    entries.append(entry(ctx, ev, Kind.FOLDER_DELETED, mailbox_id, {"name": name}))
    return entries


def acl_changed(ev: Event, ctx) -> list:
    """AclChange: the whole ACL after the change (vnd.cmu.mailboxACL), and what changed
    (aclSubject, aclRights; no rights = removed)."""
    folder, entries = folder_of(ctx, ev)
    acl = event_acl(ev)
    if acl is None:
        raise EventError("AclChange without vnd.cmu.mailboxACL")
    entries.append(
        entry(
            ctx,
            ev,
            Kind.FOLDER_ACL,
            folder.mailbox_id,
            {
                "acl": acl,
                "subject": ev.get("aclSubject"),
                "rights": ev.get("aclRights") or "",
                "mailbox": folder.name,
            },
        )
    )
    entries += folder_state(
        ctx,
        ev,
        folder.mailbox_id,
        None,
        _server_metadata(ctx, folder.mailbox_id),
        ctx.catalog.folder(folder.mailbox_id),
    )
    return entries


def _named_folder(ev: Event, ctx) -> tuple[str | None, str | None]:
    """(mailboxID or None, name) of an event that may carry only a name (no discovery: a
    user may subscribe to, or set quota on, a name no folder carries)."""
    name = ev.url.mailbox
    mailbox_id = ev.text("mailboxID", required=False)
    if mailbox_id is None and name:
        mailbox_id = ctx.catalog.folder_id(name)
    return mailbox_id, name


def _audit(kind: str, fields: tuple[str, ...] = ()):
    def handle(ev: Event, ctx) -> list:
        mailbox_id, name = _named_folder(ev, ctx)
        data = {"mailbox": name, **{f: ev.get(f) for f in fields if ev.get(f) is not None}}
        return [entry(ctx, ev, kind, mailbox_id, data)]

    handle.__name__ = kind.replace(".", "_")
    handle.__doc__ = f"{kind}: an audit entry, on the folder when the archive knows it."
    return handle


subscribed = _audit(Kind.FOLDER_SUBSCRIBED)
unsubscribed = _audit(Kind.FOLDER_UNSUBSCRIBED)
quota_changed = _audit(Kind.QUOTA_CHANGED, QUOTA_FIELDS)
quota_exceeded = _audit(Kind.QUOTA_EXCEEDED, QUOTA_FIELDS)
quota_within = _audit(Kind.QUOTA_WITHIN, QUOTA_FIELDS)


def modseq(ev: Event, ctx) -> list:
    """MailboxModseq: every change also emits one; the change's own event says what it was."""
    return []
