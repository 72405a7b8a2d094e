"""Reconciliation: what the archive believes a mailbox holds against what it holds.

Events alone are not enough: Cyrus drops event datagrams over ~21 KB (a bulk expunge of
1,200+ messages), a stream listener that is down loses events, a spool file can be gone
before its event is handled. A reconciliation pass asks the collector for the mailbox (name,
UIDVALIDITY, ACL, metadata, and every message's UID, flags, internal date) and records each
difference as a ``reconcile.difference`` entry naming what differed, followed by the entry
that makes the archive right:

- a message the archive never saw: fetched, stored, ``message.appended``;
- a message the archive has and the mailbox no longer: ``message.expunged``;
- different flags: ``flags.set`` / ``flags.cleared``;
- a different name, ACL or metadata: ``folder.renamed`` / ``folder.acl`` / ``folder.metadata``;
- a mailbox gone from the server: its messages expunged, ``folder.deleted``;
- a mailbox the archive never saw (asked for by name): ``folder.created``, then its messages.

Entries are stamped with the run's time (when the archive learnt it; the true time is not
known) and carry ``"event": <run id>`` like live-ingest entries. Only folders live ingest
knows are reconciled by default: an imported folder has nothing on the server to match.

CONDSTORE: after a mailbox is reconciled, its UIDVALIDITY and HIGHESTMODSEQ are kept in
``reconcile-state.json`` in the home (:class:`SyncState`); while the server reports the same
two, its messages are in step and are not enumerated again (name, ACL and metadata are still
compared: they come with the folder). ``everything=True`` (``reconcile --all``) asks the
collector for every mailbox on the server (IMAP LIST as the admin) and reconciles those the
vault never saw as well; since each mailbox is committed and remembered on its own, a run
that is killed continues where it stopped (what is done is unchanged, so skipped).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vault import faults
from vault.entries import EntrySpec, Kind, message_data
from vault.ingest.collector.client import MailboxUnknown, SpoolFileGone
from vault.ingest.context import HandlerContext
from vault.mailformat import message_id_of
from vault.model import ItemId, custodian_of, format_time, normalise_flags, now

log = logging.getLogger(__name__)

ACTOR = "vault-reconcile"


@dataclass
class MailboxReport:
    mailbox: str | None
    mailbox_id: str | None
    appended: list[int] = field(default_factory=list)
    expunged: list[int] = field(default_factory=list)
    flag_changes: list[int] = field(default_factory=list)
    folder_changes: list[str] = field(default_factory=list)  # created, renamed, acl, deleted ...
    problems: list[str] = field(default_factory=list)
    unchanged: bool = False  # messages not enumerated: HIGHESTMODSEQ as at the last reconciliation
    highestmodseq: int | None = None
    uidvalidity: int | None = None

    @property
    def differences(self) -> int:
        return len(self.appended) + len(self.expunged) + len(self.flag_changes) + len(self.folder_changes)

    def to_json(self) -> dict:
        return {**self.__dict__, "differences": self.differences}


class _Plan:
    """The entries of one mailbox's reconciliation, built in order."""

    def __init__(self, ctx, run_id: str, time: str, actor: str):
        self.ctx = ctx
        self.run_id = run_id
        self.time = time
        self.actor = actor
        self.entries: list[EntrySpec] = []

    def add(self, kind: str, item: str | None, data: dict) -> None:
        stamped = {**data, "event": self.run_id, "reconciled": True}
        self.entries.append(EntrySpec(kind, item, stamped, time=self.time, actor=self.actor))

    def difference(self, item: str | None, what: str, mailbox: str | None, **details) -> None:
        self.add(Kind.RECONCILE_DIFFERENCE, item, {"difference": what, "mailbox": mailbox, **details})


class SyncState:
    """What each mailbox was when last reconciled: ``{mailboxID: [uidvalidity,
    highestmodseq]}``, and whether a first sync of the whole server completed. A JSON file
    in the home, replaced atomically after each mailbox's commit."""

    NAME = "reconcile-state.json"

    def __init__(self, path: Path | None):
        self.path = path
        self.mailboxes: dict[str, list[int]] = {}
        self.first_sync: str | None = None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.mailboxes = {
                    k: [int(v[0]), int(v[1])] for k, v in data.get("mailboxes", {}).items() if len(v) == 2
                }
                self.first_sync = data.get("first_sync")
            except (ValueError, TypeError, AttributeError, OSError) as e:
                log.warning("%s unreadable (%s): every mailbox is enumerated again", path, e)

    @classmethod
    def of(cls, vault) -> SyncState:
        home = getattr(getattr(vault, "config", None), "home", None)
        return cls(Path(home) / cls.NAME if home is not None else None)

    def unchanged(self, mailbox_id: str, uidvalidity, highestmodseq) -> bool:
        if highestmodseq is None or uidvalidity is None:
            return False
        return self.mailboxes.get(mailbox_id) == [int(uidvalidity), int(highestmodseq)]

    def remember(self, report: MailboxReport) -> None:
        if report.mailbox_id is None:
            return
        if report.highestmodseq is None or report.uidvalidity is None or report.problems:
            self.mailboxes.pop(report.mailbox_id, None)  # not known to be in step
        else:
            self.mailboxes[report.mailbox_id] = [report.uidvalidity, report.highestmodseq]
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"first_sync": self.first_sync, "mailboxes": self.mailboxes}
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def plan_mailbox(
    ctx, target: str, *, run_id: str, time: str, actor: str = ACTOR, state: SyncState | None = None
) -> tuple[list[EntrySpec], MailboxReport]:
    """The entries that bring the archive's view of ``target`` (a mailboxID the catalog
    knows, or a name) in line with the server. ``ctx`` gives catalog, collector, store;
    with ``state``, a mailbox whose HIGHESTMODSEQ is as last reconciled keeps its messages
    unenumerated."""
    catalog = ctx.catalog
    mailbox_id = target if catalog.folder(target) is not None else catalog.folder_id(target)
    row = catalog.folder(mailbox_id) if mailbox_id else None
    if row is not None and row["deleted_at"] is not None and mailbox_id != target:
        row = None  # the folder that last carried this name is gone: ask about the name
    plan = _Plan(ctx, run_id, time, actor)
    report = MailboxReport(row["name"] if row else target, row["mailbox_id"] if row else None)
    live = row if row is not None and row["deleted_at"] is None else None  # the folder, if not deleted
    try:
        server = ctx.collector.folder(row["mailbox_id"] if row else target)
    except MailboxUnknown as e:
        if live is not None:
            _folder_gone(plan, report, live, str(e))
        else:
            report.problems.append(f"{target}: not on the server")
        return plan.entries, report
    if server.get("deleted"):
        if live is not None:
            _folder_gone(plan, report, live, f"deleted on the server ({server['name']})")
        return plan.entries, report
    if row is None or row["mailbox_id"] != server["mailbox_id"]:
        row = catalog.folder(server["mailbox_id"])
    report.mailbox_id = server["mailbox_id"]
    report.mailbox = server["name"]
    _folder(plan, report, row, server)
    uidvalidity, highestmodseq = server.get("uidvalidity"), server.get("highestmodseq")
    if (
        row is not None
        and state is not None
        and state.unchanged(report.mailbox_id, uidvalidity, highestmodseq)
    ):
        report.unchanged = True
        report.uidvalidity, report.highestmodseq = int(uidvalidity), int(highestmodseq)
        return plan.entries, report
    _messages(plan, report, server)
    return plan.entries, report


def _folder(plan: _Plan, report: MailboxReport, row: dict | None, server: dict) -> None:
    mailbox_id, name = server["mailbox_id"], server["name"]
    if row is None:
        plan.difference(mailbox_id, "folder missing", name, server={"name": name})
        plan.add(
            Kind.FOLDER_CREATED,
            mailbox_id,
            {"name": name, "uidvalidity": server["uidvalidity"], "discovered": True},
        )
        report.folder_changes.append("created")
        archive_acl = archive_metadata = None
    else:
        if row["name"] != name:
            plan.difference(mailbox_id, "name", name, archive=row["name"], server=name)
            plan.add(
                Kind.FOLDER_RENAMED,
                mailbox_id,
                {"old": row["name"], "name": name, "uidvalidity": server["uidvalidity"]},
            )
            report.folder_changes.append("renamed")
        archive_acl = json.loads(row["acl"]) if row.get("acl") else None
        archive_metadata = json.loads(row["metadata"]) if row.get("metadata") else None
    acl, metadata = server.get("acl") or {}, server.get("metadata") or {}
    if acl != (archive_acl or {}):
        plan.difference(mailbox_id, "acl", name, archive=archive_acl, server=acl)
        plan.add(Kind.FOLDER_ACL, mailbox_id, {"acl": acl})
        report.folder_changes.append("acl")
    if metadata != (archive_metadata or {}):
        plan.difference(mailbox_id, "metadata", name, archive=archive_metadata, server=metadata)
        plan.add(Kind.FOLDER_METADATA, mailbox_id, {"metadata": metadata})
        report.folder_changes.append("metadata")


def _folder_gone(plan: _Plan, report: MailboxReport, row: dict, why: str) -> None:
    mailbox_id, name = row["mailbox_id"], row["name"]
    plan.difference(mailbox_id, "folder gone", name, server=why)
    for item in sorted(plan.ctx.catalog.live_items(mailbox_id), key=lambda i: i["uid"]):
        plan.add(Kind.MESSAGE_EXPUNGED, item["item"], {"mailbox": name, "reason": "folder gone"})
        report.expunged.append(item["uid"])
    plan.add(Kind.FOLDER_DELETED, mailbox_id, {"name": name})
    report.folder_changes.append("deleted")


def _messages(plan: _Plan, report: MailboxReport, server: dict) -> None:
    ctx = plan.ctx
    mailbox_id, name, uidvalidity = server["mailbox_id"], server["name"], int(server["uidvalidity"])
    state = ctx.collector.mailbox_state(mailbox_id)
    if int(state["uidvalidity"]) != uidvalidity:
        report.problems.append(f"{name}: UIDVALIDITY changed while reconciling; run again")
        return
    if state.get("highestmodseq") is not None:
        report.uidvalidity, report.highestmodseq = uidvalidity, int(state["highestmodseq"])
    on_server = {m["uid"]: m for m in state["messages"]}
    archived = {}
    for item in ctx.catalog.live_items(mailbox_id):
        if item["origin"] is not None:
            continue  # imported history: its own numbering, nothing on the server to match
        if item["uidvalidity"] == uidvalidity and item["uid"] in on_server:
            archived[item["uid"]] = item
            continue
        plan.difference(
            item["item"], "expunged", name, archive={"uid": item["uid"], "uidvalidity": item["uidvalidity"]}
        )
        plan.add(Kind.MESSAGE_EXPUNGED, item["item"], {"mailbox": name})
        report.expunged.append(item["uid"])
    for uid in sorted(on_server):
        message = on_server[uid]
        item = str(ItemId(mailbox_id, uidvalidity, uid))
        flags = normalise_flags(message["flags"])
        if uid not in archived:
            _missing(plan, report, item, name, mailbox_id, message, flags)
            continue
        have = set(archived[uid]["flags"])
        if have != set(flags):
            plan.difference(item, "flags", name, archive=sorted(have), server=flags)
            if set(flags) - have:
                plan.add(Kind.FLAGS_SET, item, {"flags": sorted(set(flags) - have), "mailbox": name})
            if have - set(flags):
                plan.add(Kind.FLAGS_CLEARED, item, {"flags": sorted(have - set(flags)), "mailbox": name})
            report.flag_changes.append(uid)


def _missing(
    plan: _Plan, report: MailboxReport, item: str, name: str, mailbox_id: str, message: dict, flags: list[str]
) -> None:
    try:
        fetched = plan.ctx.collector.fetch_message(mailbox_id, message["uid"])
    except SpoolFileGone:
        report.problems.append(f"{name} UID {message['uid']}: expunged before it could be fetched")
        return
    plan.difference(
        item,
        "missing",
        name,
        server={k: message[k] for k in ("uid", "flags", "internal_date", "size", "modseq")},
    )
    plan.add(
        Kind.MESSAGE_APPENDED,
        item,
        message_data(
            blob=plan.ctx.store.put(fetched.data),
            size=len(fetched.data),
            internal_date=message["internal_date"] or fetched.internal_date,
            flags=flags,
            mailbox=name,
            message_id=message_id_of(fetched.data),
        ),
    )
    report.appended.append(message["uid"])


# ================================================================ running it


def live_folders(catalog) -> list[str]:
    """mailboxIDs of the folders live ingest knows and has not seen deleted."""
    return [
        f["mailbox_id"]
        for f in catalog.folders(include_deleted=False)
        if catalog.has_events_for(f["mailbox_id"])
    ]


def targets_of(
    catalog,
    collector,
    mailboxes: list[str] | None = None,
    *,
    everything: bool = False,
    users: list[str] | None = None,
) -> list[str]:
    """What a run reconciles: ``mailboxes`` as given (and with ``users``, every folder of
    theirs the archive or the server has); else every live folder, and with ``everything``
    every mailbox on the server too (the collector's LIST), known ones first."""
    if mailboxes or users:
        out = list(mailboxes or [])
        if users:
            wanted = set(users)
            out += [
                f["mailbox_id"]
                for f in catalog.folders(include_deleted=False)
                if custodian_of(f["name"]) in wanted
            ]
            out += [m["mailbox_id"] for m in collector.mailboxes() if custodian_of(m["name"]) in wanted]
        return list(dict.fromkeys(out))
    targets = live_folders(catalog)
    if everything:
        known = set(targets)
        for m in collector.mailboxes():
            if m["mailbox_id"] not in known and not m.get("deleted"):
                known.add(m["mailbox_id"])
                targets.append(m["mailbox_id"])
    return targets


def reconcile(
    vault,
    collector,
    mailboxes: list[str] | None = None,
    *,
    actor: str = ACTOR,
    progress=None,
    everything: bool = False,
    full: bool = False,
    targets: list[str] | None = None,
    users: list[str] | None = None,
) -> list[MailboxReport]:
    """Reconcile ``mailboxes`` (names or ids; default: every live folder; with
    ``everything``, every mailbox on the server), recording the differences in ``vault``
    (opened as the writer) and committing per mailbox. Mailboxes unchanged since their last
    reconciliation (HIGHESTMODSEQ) are not enumerated, unless ``full``. ``targets``: the
    list :func:`targets_of` gave, when the caller already asked for it."""
    ctx = HandlerContext(vault.catalog, vault.store, collector)
    if targets is None:
        targets = targets_of(vault.catalog, collector, mailboxes, everything=everything, users=users)
    state = SyncState.of(vault)
    reports = []
    for target in targets:
        run_id = f"reconcile:{uuid.uuid4().hex}"
        entries, report = plan_mailbox(
            ctx, target, run_id=run_id, time=format_time(now()), actor=actor, state=None if full else state
        )
        for spec in entries:
            vault.record(spec.kind, item=spec.item, data=spec.data, time=spec.time, actor=spec.actor)
        vault.commit()
        faults.point("reconcile.committed")  # committed, not yet remembered: enumerated again
        state.remember(report)
        if report.differences or report.problems:
            log.info(
                "reconcile %s: %d appended, %d expunged, %d flag changes, folder %s%s",
                report.mailbox,
                len(report.appended),
                len(report.expunged),
                len(report.flag_changes),
                report.folder_changes or "unchanged",
                f"; problems: {report.problems}" if report.problems else "",
            )
        reports.append(report)
        if progress:
            progress(1)
    if everything and not mailboxes and not users:
        state.first_sync = format_time(now())
        state.save()
    return reports
