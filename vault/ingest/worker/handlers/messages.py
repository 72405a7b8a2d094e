"""Message events: new, appended, copied, moved, expunged, read, trashed.

MessageNew (LMTP) and MessageAppend (IMAP APPEND) carry no payload in Cyrus 3.6: the bytes
come from the spool through the collector, and the internal date with them (the spool
file's mtime). A MOVE is a vnd.cmu.MessageMove on the destination plus a MessageExpunge on
the source; a COPY's source is resolved in the catalog so its blob is reused, else fetched.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.entries import Kind, message_data
from vault.ingest.worker.handlers.common import Folder, entry, fetch, folder_of
from vault.ingest.worker.handlers.event import Event, EventError, uids
from vault.ingest.worker.handlers.flags import flags_changed
from vault.mailformat import message_id_of
from vault.model import ItemId, normalise_flags


def _message_id(ev: Event, data: bytes) -> str | None:
    found = message_id_of(data)
    if found:
        return found
    midset = ev.get("vnd.cmu.midset")
    if isinstance(midset, list) and midset and isinstance(midset[0], str) and midset[0] != "NIL":
        return midset[0]
    return None


def _fetched(ctx, ev: Event, folder: Folder, uid: int) -> dict:
    """The content half of a content entry's data, from the message's spool file."""
    message = fetch(ctx, folder, uid)
    return {
        "blob": ctx.store.put(message.data),
        "size": len(message.data),
        "internal_date": message.internal_date,
        "message_id": _message_id(ev, message.data),
    }


def _extras(ev: Event) -> dict:
    out = {"service": ev.get("service")}
    if isinstance(ev.get("vnd.cmu.emailid"), str):
        out["emailid"] = ev.get("vnd.cmu.emailid")
    return {k: v for k, v in out.items() if v is not None}


def appended(ev: Event, ctx) -> list:
    """MessageNew / MessageAppend: one message, its UID in the URI."""
    uid = ev.url.uid
    if uid is None:
        raise EventError(f"{ev.name} without ;UID= in its uri {ev.get('uri')!r}")
    folder, entries = folder_of(ctx, ev)
    if _present(ctx, folder.item(uid)):
        return entries  # reconciliation got here first
    data = message_data(
        **_fetched(ctx, ev, folder, uid),
        flags=normalise_flags(ev.flag_names()),
        mailbox=folder.name,
        **_extras(ev),
    )
    entries.append(entry(ctx, ev, Kind.MESSAGE_APPENDED, folder.item(uid), data))
    return entries


def _present(ctx, item: str) -> bool:
    row = ctx.catalog.item(item)
    return row is not None and row["expunged_at"] is None


def _source_folder(ctx, ev: Event) -> tuple[str | None, int | None, str | None]:
    """(mailboxID, UIDVALIDITY, name) of a copy's or move's source, from oldMailboxID."""
    old = ev.old_url
    if not old.mailbox:
        return None, old.uidvalidity, None
    mailbox_id = ctx.catalog.folder_id(old.mailbox, ev.time) if ev.time else None
    mailbox_id = mailbox_id or ctx.catalog.folder_id(old.mailbox)
    uidvalidity = old.uidvalidity
    if mailbox_id and uidvalidity is None:
        uidvalidity = ctx.catalog.folder(mailbox_id)["uidvalidity"]
    return mailbox_id, uidvalidity, old.mailbox


def _copied(kind: str):
    """vnd.cmu.MessageCopy / MessageMove: ``kind`` for each destination UID in uidset, paired
    in order with vnd.cmu.oldUidset in the source named by oldMailboxID."""

    def handle(ev: Event, ctx) -> list:
        targets = uids(ev.text("uidset"))
        old = ev.get("vnd.cmu.oldUidset")
        sources: Sequence[int | None] = uids(old) if old else []
        folder, entries = folder_of(ctx, ev)
        source_id, source_uidvalidity, source_name = _source_folder(ctx, ev)
        if len(sources) != len(targets):
            sources = [None] * len(targets)  # cannot pair them: fetch every copy
        for uid, source_uid in zip(targets, sources):
            source = None
            if source_id and source_uidvalidity and source_uid:
                source = str(ItemId(source_id, source_uidvalidity, source_uid))
            row = ctx.catalog.item(source) if source else None
            if row is not None and not row.get("purged_at"):
                content = {
                    "blob": row["blob"],
                    "size": row["size"],
                    "internal_date": row["internal_date"],
                    "message_id": row["message_id"],
                }
                flags = row["flags"]
            else:
                # the archive never had the source (or retention purged it): the copy's own
                # spool file; COPY keeps flags, but which ones only reconciliation can tell
                content, flags = _fetched(ctx, ev, folder, uid), []
            data = message_data(
                **content,
                flags=flags,
                mailbox=folder.name,
                source=source,
                source_mailbox=source_name,
                source_uid=source_uid,
                **_extras(ev),
            )
            entries.append(entry(ctx, ev, kind, folder.item(uid), data))
        return entries

    handle.__name__ = kind.replace(".", "_")
    return handle


copied = _copied(Kind.MESSAGE_COPIED)
moved = _copied(Kind.MESSAGE_MOVED)


def expunged(ev: Event, ctx) -> list:
    """MessageExpunge: message.expunged for every UID in uidset."""
    targets = uids(ev.text("uidset"))
    folder, entries = folder_of(ctx, ev)
    for uid in targets:
        row = ctx.catalog.item(folder.item(uid))
        if row is not None and row["expunged_at"] is not None:
            continue  # reconciliation got here first
        entries.append(entry(ctx, ev, Kind.MESSAGE_EXPUNGED, folder.item(uid), {"mailbox": folder.name}))
    return entries


# +FLAGS \Deleted is reported as MessageTrash, a first \Seen as MessageRead (Cyrus 3.6)
trashed = flags_changed(Kind.FLAGS_SET, ["\\Deleted"])
read = flags_changed(Kind.FLAGS_SET, ["\\Seen"])
