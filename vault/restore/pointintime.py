"""Point-in-time restore: a folder exactly as it was at time T (docs/architecture.md 1.8).

The catalog says which items were present at T and with which flags; the store gives
back their bytes (hash-verified on read); a target writes them. Every restore is a
ledger entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vault.archive import Vault
from vault.audit import record_audit
from vault.entries import Kind
from vault.model import format_time, parse_time
from vault.recording import ensure_recordable
from vault.restore.targets import open_target


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
    items: list[str] = field(default_factory=list)
    audit: str = ""  # "recorded" in the ledger, or "queued" with the broker (live ingest holds it)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def resolve_folder(vault: Vault, mailbox: str, at: str) -> str:
    mailbox_id = vault.catalog.folder_id(mailbox, at)
    if mailbox_id is None:
        known = ", ".join(sorted(f["name"] for f in vault.catalog.folders() if f["name"])) or "none"
        raise RestoreError(f"no folder named {mailbox!r} in the archive (folders: {known})")
    return mailbox_id


@dataclass(frozen=True)
class Snapshot:
    """A folder as it was at one time: what a restore writes, computed once."""

    mailbox: str
    mailbox_id: str
    at: str  # vault time string
    uid: int | None
    items: list[dict]  # items present then, with their flags then


def snapshot(vault: Vault, mailbox: str, at: datetime, uid: int | None = None) -> Snapshot:
    when = format_time(at)
    mailbox_id = resolve_folder(vault, mailbox, when)
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


def restore_snapshot(
    vault: Vault, snap: Snapshot, target: str, *, actor: str | None = None, progress=None
) -> RestoreReport:
    """Write a snapshot's messages into ``target`` (callers that show progress need the
    count first: they take the snapshot once and pass it here)."""
    report = RestoreReport(snap.mailbox, snap.mailbox_id, snap.at, target)
    advance = progress or (lambda n=1, **kw: None)
    ensure_recordable(vault)  # nothing is written that could not be audited
    out = open_target(target)
    try:
        for item in snap.items:
            if item.get("purged_at"):
                report.purged.append(item["item"])
                advance(1)
                continue
            data = vault.store.get(item["blob"])  # verifies the sha256 on every read
            internal = item["internal_date"]
            out.add(
                data,
                flags=item["flags"],
                uid=item["uid"],
                internal_date=parse_time(internal) if internal else None,
            )
            report.restored += 1
            report.bytes += len(data)
            report.items.append(item["item"])
            advance(1)
    finally:
        out.close()
    report.audit = record_audit(
        vault,
        Kind.RESTORE_DONE,
        item=snap.mailbox_id,
        actor=actor,
        data={
            "mailbox": snap.mailbox,
            "at": report.at,
            "target": target,
            "restored": report.restored,
            "purged": len(report.purged),
            "uid": snap.uid,
        },
    )
    return report
