"""What every handler does the same way: entries stamped with the event, the actor by stable
user id, the folder an event is about (discovered from the server when the archive has never
seen it), and fetching a payload."""

from __future__ import annotations

import json
from dataclasses import dataclass

from vault.entries import EntrySpec, Kind
from vault.ingest.collector.client import MailboxUnknown, SpoolFileGone
from vault.ingest.context import Quarantine
from vault.ingest.worker.handlers.event import Event, parse_acl
from vault.model import ItemId

SERVER_ACTOR = "cyrus"  # events no user caused (MailboxModseq carries user "")


def actor_of(ctx, ev: Event) -> str:
    """The user's stable id when a directory is configured, else the login name."""
    user = ev.user
    if not user:
        return SERVER_ACTOR
    directory = getattr(ctx, "directory", None)
    if directory is None:
        return user
    try:
        return directory.resolve(user).id
    except ValueError:
        return user


def entry(ctx, ev: Event, kind: str, item: str | None, data: dict) -> EntrySpec:
    """One ledger entry for this event: its time is the event's, its data names the event
    (exactly-once), the user and the session."""
    stamped = dict(data)
    stamped["event"] = ctx.event_id
    stamped.setdefault("cyrus_event", ev.name)
    if ev.user:
        stamped.setdefault("user", ev.user)
    if ev.session:
        stamped.setdefault("session", ev.session)
    return EntrySpec(kind, item, stamped, time=ev.time, actor=actor_of(ctx, ev))


@dataclass(frozen=True)
class Folder:
    mailbox_id: str
    uidvalidity: int
    name: str | None

    def item(self, uid: int) -> str:
        return str(ItemId(self.mailbox_id, self.uidvalidity, uid))


def folder_of(ctx, ev: Event) -> tuple[Folder, list[EntrySpec]]:
    """The folder of a mailbox event, and the entries to record first: a folder the archive
    has never seen but the server knows is recorded as created (``discovered``); one the
    server does not know either is quarantined."""
    mailbox_id = ev.mailbox_id
    url = ev.url
    known = ctx.catalog.folder(mailbox_id)
    if known is not None:
        return Folder(mailbox_id, url.uidvalidity or known["uidvalidity"], url.mailbox or known["name"]), []
    try:
        info = ctx.collector.folder(mailbox_id)
    except MailboxUnknown as e:
        raise Quarantine(
            f"{ev.name} for mailbox {mailbox_id} ({url.mailbox or 'no name'}): "
            f"unknown to the archive and to the server ({e})"
        ) from None
    name = url.mailbox or info["name"]
    folder = Folder(mailbox_id, url.uidvalidity or int(info["uidvalidity"]), name)
    created = entry(
        ctx,
        ev,
        Kind.FOLDER_CREATED,
        mailbox_id,
        {
            "name": name,
            "uidvalidity": folder.uidvalidity,
            "discovered": True,
        },
    )
    return folder, [
        created,
        *folder_state(ctx, ev, mailbox_id, info.get("acl") or {}, info.get("metadata") or {}, None),
    ]


def folder_state(
    ctx, ev: Event, mailbox_id: str, acl: dict | None, metadata: dict | None, row: dict | None
) -> list[EntrySpec]:
    """folder.acl / folder.metadata entries for whatever differs from ``row``, the folder as
    the catalog has it (None: not in the catalog yet). ``None`` arguments are not known."""
    out = []

    def current(column):
        return json.loads(row[column]) if row and row.get(column) else None

    if acl is not None and acl != current("acl"):
        out.append(entry(ctx, ev, Kind.FOLDER_ACL, mailbox_id, {"acl": acl}))
    if metadata is not None and (metadata or current("metadata")) and metadata != current("metadata"):
        out.append(entry(ctx, ev, Kind.FOLDER_METADATA, mailbox_id, {"metadata": metadata}))
    return out


def event_acl(ev: Event) -> dict | None:
    raw = ev.get("vnd.cmu.mailboxACL")
    return None if raw is None else parse_acl(raw)


def fetch(ctx, folder: Folder, uid: int):
    """The message's bytes and internal date from the collector; a spool file already gone is
    quarantined (reconciliation will record what the mailbox holds)."""
    try:
        return ctx.collector.fetch_message(folder.mailbox_id, uid)
    except SpoolFileGone as e:
        raise Quarantine(f"spool file gone: {folder.name or folder.mailbox_id} UID {uid} ({e})") from None
    except MailboxUnknown as e:
        raise Quarantine(
            f"mailbox {folder.mailbox_id} ({folder.name}) unknown to the server when fetching UID {uid} ({e})"
        ) from None
