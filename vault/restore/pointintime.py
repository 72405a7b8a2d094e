"""Point-in-time restore: a folder exactly as it was at time T (docs/architecture.md 1.8).

The catalog says which items were present at T and with which flags; the store gives
back their bytes (hash-verified on read); a target writes them. Every restore is a
ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from vault.archive import Vault
from vault.audit import record_audit
from vault.entries import Kind
from vault.model import custodian_of, format_time, parse_time
from vault.recording import ensure_recordable
from vault.restore.targets import describe_target, open_target


class RestoreError(Exception):
    pass


@dataclass
class RestoreReport:
    mailbox: str
    mailbox_id: str
    at: str
    target: str
    restored: int = 0
    bytes: int = 0
    purged: list[str] = field(default_factory=list)  # items present at T whose content was purged
    # item -> how it went: "purged by retention rule R (T)" or "erased by erasure request ID (T)"
    removed: dict[str, str] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)
    audit: str = ""  # "recorded" in the ledger (by this process or the vault service)
    unreadable: list[dict] = field(default_factory=list)  # {"item", "reason"}: skipped, the rest written

    def to_json(self) -> dict:
        return dict(self.__dict__)


def resolve_folder(vault: Vault, mailbox: str, at: str, visible: Callable[[str], bool] | None = None) -> str:
    """The mailboxID named ``mailbox`` at ``at``; RestoreError naming the folders there are
    (those ``visible`` allows: the caller's)."""
    mailbox_id = vault.catalog.folder_id(mailbox, at)
    if mailbox_id is None:
        names = [
            f["name"]
            for f in vault.catalog.folders()
            if f["name"] and (visible is None or visible(f["name"]))
        ]
        known = ", ".join(sorted(names)) or "none"
        raise RestoreError(f"no folder named {mailbox!r} in the archive (folders: {known})")
    return mailbox_id


def user_folders(vault: Vault, user: str, at: datetime) -> list[str]:
    """The names, as they were at ``at``, of every folder of ``user`` that existed then, as
    Cyrus names them (``user/jane`` is jane's INBOX, ``user/jane/Sent``...), sorted;
    RestoreError when there is none."""
    when = format_time(at)
    names = set()
    for f in vault.catalog.folders():
        if f["created_at"] > when or (f["deleted_at"] and f["deleted_at"] <= when):
            continue
        name = vault.catalog.folder_name(f["mailbox_id"], when)
        if name and custodian_of(name) == user:
            names.add(name)
    if not names:
        raise RestoreError(f"{user} had no folders in the archive at {when}")
    return sorted(names)


@dataclass(frozen=True)
class Snapshot:
    """A folder as it was at one time: what a restore writes, computed once."""

    mailbox: str
    mailbox_id: str
    at: str  # vault time string
    uid: int | None
    items: list[dict]  # items present then, with their flags then


def snapshot(
    vault: Vault,
    mailbox: str,
    at: datetime,
    uid: int | None = None,
    visible: Callable[[str], bool] | None = None,
) -> Snapshot:
    when = format_time(at)
    mailbox_id = resolve_folder(vault, mailbox, when, visible)
    folder = vault.catalog.folder(mailbox_id)
    if folder is not None and folder["created_at"] > when:
        raise RestoreError(
            f"{mailbox} did not exist yet at {when}: the archive has it from {folder['created_at']} "
            "(restore at that time or later)"
        )
    items = vault.catalog.items_at(mailbox_id, when)
    if uid is not None:
        items = [i for i in items if i["uid"] == uid]
        if not items:
            raise RestoreError(f"{mailbox}: no message with UID {uid} at {when}")
    return Snapshot(mailbox, mailbox_id, when, uid, items)


@dataclass(frozen=True)
class Message:
    """One message of a restore, as a target takes it."""

    item: str
    uid: int
    flags: list[str]
    internal_date: str | None  # vault time string
    data: bytes


def messages_of(vault: Vault, snap: Snapshot) -> Iterator[Message]:
    """The bytes of the snapshot's messages whose content retention has not purged, read
    (and hash-verified) one at a time."""
    for item in snap.items:
        if not item.get("purged_at"):
            data = vault.store.get(item["blob"])  # verifies the sha256 on every read
            yield Message(item["item"], item["uid"], list(item["flags"]), item["internal_date"], data)


@dataclass(frozen=True)
class Unreadable:
    """A message of a restore whose bytes could not be read (a corrupt or missing blob):
    skipped and reported, the restore goes on."""

    item: str
    reason: str


def messages_or_unreadable(vault: Vault, snap: Snapshot) -> Iterator[Message | Unreadable]:
    """As ``messages_of``, but a message whose blob cannot be read is an ``Unreadable`` in
    its place instead of the end of the restore."""
    from vault.store.backends.base import StoreError

    for item in snap.items:
        if not item.get("purged_at"):
            try:
                data = vault.store.get(item["blob"])
            except StoreError as e:
                yield Unreadable(item["item"], str(e))
                continue
            yield Message(item["item"], item["uid"], list(item["flags"]), item["internal_date"], data)


def purged_of(snap: Snapshot) -> list[str]:
    """The items present at the snapshot's time whose content was purged since (by a
    retention sweep or an erasure: :func:`removed_of` says which)."""
    return [i["item"] for i in snap.items if i.get("purged_at")]


def removed_of(vault: Vault, items: list[str]) -> dict[str, str]:
    """item -> how its content went (a retention rule's purge or an erasure request's)."""
    from vault.purge import describe_purge

    found = vault.catalog.purges(items)
    return {i: describe_purge(found[i]) if i in found else "purged" for i in items}


def write_messages(
    target: str, messages: Iterable[Message | Unreadable], report: RestoreReport, progress=None
) -> None:
    """Write ``messages`` into ``target`` (maildir:, mbox:, imap://), counting them in ``report``
    (an ``Unreadable`` is listed in ``report.unreadable``, the rest still written). The vault
    service's callers run this in their own process, with their own permissions, on what the
    service streamed them (vault/restore/stream.py). The target is made when the first
    message comes (or at the end, empty, for an empty folder): when not one message could be
    read, nothing is made."""
    advance = progress or (lambda n=1, **kw: None)
    out = None
    try:
        for m in messages:
            if isinstance(m, Unreadable):
                report.unreadable.append({"item": m.item, "reason": m.reason})
                advance(1)
                continue
            if out is None:
                out = open_target(target)
            when = parse_time(m.internal_date) if m.internal_date else None
            out.add(m.data, flags=m.flags, uid=m.uid, internal_date=when)
            report.restored += 1
            report.bytes += len(m.data)
            report.items.append(m.item)
            advance(1)
        if out is None and not report.unreadable:
            out = open_target(target)  # an empty folder restores as an empty one
    finally:
        if out is not None:
            out.close()


def restore_data(snap: Snapshot, target: str, restored: int, purged: int, unreadable: int = 0) -> dict:
    """The ``restore.done`` entry's data (the target with any password left out)."""
    data = {
        "mailbox": snap.mailbox,
        "at": snap.at,
        "target": describe_target(target),
        "restored": restored,
        "purged": purged,
        "uid": snap.uid,
    }
    if unreadable:
        data["unreadable"] = unreadable
    return data


def restore_snapshot(
    vault: Vault,
    snap: Snapshot,
    target: str,
    *,
    actor: str | None = None,
    progress=None,
    extra: dict | None = None,
) -> RestoreReport:
    """Write a snapshot's messages into ``target`` (callers that show progress need the
    count first: they take the snapshot once and pass it here). ``extra``: more data for
    the audit entry (who the restore was made for).

    Audit first: the ``restore.done`` entry (what is about to be read out) is committed
    before the first message is written, so a restore whose entry cannot be recorded (the
    home read-only, another writer holding the vault with no service to ask, a full disk)
    writes nothing at all."""
    ensure_recordable(vault)  # refused before any work when it could not be audited
    report = RestoreReport(snap.mailbox, snap.mailbox_id, snap.at, target, purged=purged_of(snap))
    report.removed = removed_of(vault, report.purged)
    count = len(snap.items) - len(report.purged)  # planned: one unreadable is reported, not recorded
    report.audit = record_audit(
        vault,
        Kind.RESTORE_DONE,
        item=snap.mailbox_id,
        actor=actor,
        data={**restore_data(snap, target, count, len(report.purged)), **(extra or {})},
    )
    advance = progress or (lambda n=1, **kw: None)
    advance(len(report.purged))
    write_messages(target, messages_or_unreadable(vault, snap), report, advance)
    return report
