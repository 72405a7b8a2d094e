"""Offline import: one run of a source into a mailbox is a snapshot (issue: archive core).

The run compares the source with what the archive believes the mailbox holds *from
that same source*: new messages are appended, messages gone are expunged, changed
flags become flag changes, all stamped with the run's time. Work is committed in
batches; a run killed half-way leaves committed batches in place and the next run
picks up the rest. Expunges are only inferred after a complete scan, so a crash, or an
unreadable file, can never make a message look deleted.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vault.archive import Vault
from vault.entries import Kind, message_data
from vault.ingest.importers import open_source
from vault.ingest.importers.base import SourceMessage, SourceProblem
from vault.ingest.importers.readahead import Read, ReadAhead, read_of
from vault.ingest.importers.tree import Rel
from vault.model import ItemId, cyrus_folder_name, format_time, normalise_flags, now

# Messages read up front to train the compression dictionary on a vault's first import.
DICTIONARY_SAMPLE = 2000
PREFETCH_WINDOW = 512  # messages asked for ahead of the writer at most
READ_CHUNK = 32  # messages read and hashed per request

_MAILBOX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

# The UIDVALIDITY of history imported into a folder live ingest knows. IMAP forbids 0
# (RFC 3501: nz-number), so Cyrus never numbers a message under it: imported items keep an
# identity of their own in the same folder, and no UID Cyrus gives next can name one of them.
HISTORY_UIDVALIDITY = 0

log = logging.getLogger(__name__)


class _Chunks:
    """Messages to read ahead, handed to the read-ahead process READ_CHUNK to a request."""

    def __init__(self, readahead: ReadAhead, tree: int):
        self.readahead = readahead
        self.tree = tree
        self.rels: list[Rel] = []  # the files of the chunk being gathered, one per slot
        self.slots: list[_Ahead] = []
        self.answers: dict[int, list[Read | OSError | None]] = {}  # the chunks being taken

    def add(self, rel: Rel) -> _Ahead:
        """The slot of a message stored as this file: its answer's place in the chunk."""
        slot = _Ahead(self, len(self.rels))
        self.rels.append(rel)
        self.slots.append(slot)
        if len(self.rels) >= READ_CHUNK:
            self.submit()
        return slot

    def submit(self) -> None:
        if not self.rels:
            return
        ticket = self.readahead.submit(self.tree, self.rels)
        for slot in self.slots:
            slot.ticket = ticket
        self.rels, self.slots = [], []

    def answer(self, ticket: int) -> list[Read | OSError | None]:
        answers = self.answers.get(ticket)
        if answers is None:
            # taken in order: the chunks before this one are done with
            self.answers = {ticket: self.readahead.answer(ticket)}
            answers = self.answers[ticket]
        return answers


class _Ahead:
    """One message's place in a chunk read ahead (Importer._prefetched)."""

    __slots__ = ("chunks", "got", "index", "ticket")

    def __init__(self, chunks: _Chunks, index: int):
        self.chunks = chunks
        self.index = index
        self.ticket = 0
        self.got: Read | OSError | None = None

    def result(self, msg: SourceMessage) -> Read:
        if self.got is None:
            if not self.ticket:  # still in the chunk being gathered
                self.chunks.submit()
            got = self.chunks.answer(self.ticket)[self.index]
            self.got = got if got is not None else _Done(msg).got  # the process is gone: read here
        if isinstance(self.got, OSError):
            raise self.got
        return self.got


class _Done:
    """A message read in the writer up front (a dictionary sample), or its read's error."""

    __slots__ = ("got",)

    def __init__(self, msg: SourceMessage):
        try:
            self.got: Read | OSError = read_of(msg.read())
        except OSError as e:
            self.got = e

    def result(self, msg: SourceMessage) -> Read:
        if isinstance(self.got, OSError):
            raise self.got
        return self.got


def start_readahead() -> ReadAhead | None:
    """The read-ahead process of a run; None where none can start (the writer reads)."""
    try:
        return ReadAhead()
    except OSError as e:
        log.warning("messages are read in this process: %s", e)
        return None


def new_mailbox_id() -> str:
    """A fresh folder id in the shape of Cyrus's uniqueid (24 lowercase alphanumerics)."""
    return "".join(secrets.choice(_MAILBOX_ALPHABET) for _ in range(24))


@dataclass
class ImportReport:
    source: str
    kind: str
    mailbox: str
    mailbox_id: str = ""
    appended: int = 0
    expunged: int = 0
    flag_changes: int = 0
    unchanged: int = 0
    already_archived: int = 0  # in a live folder: the same message archived from the server
    bytes_read: int = 0
    problems: list[SourceProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.appended or self.expunged or self.flag_changes)

    @property
    def unread(self) -> int:
        """Problems that are read failures (not links, FIFOs or devices skipped on purpose,
        nor warnings about what was archived): the run is incomplete (vaultctl exits 3)."""
        return sum(1 for p in self.problems if p.unreadable)

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["problems"] = [
            {"path": p.path, "reason": p.reason, **({"unreadable": True} if p.unreadable else {})}
            for p in self.problems
        ]
        return out

    @classmethod
    def from_json(cls, data: dict) -> ImportReport:
        """Inverse of :meth:`to_json` (a report the vault service sent)."""
        problems = [
            SourceProblem(p["path"], p["reason"], unreadable=bool(p.get("unreadable")))
            for p in data.get("problems", [])
        ]
        return cls(**{**{k: v for k, v in data.items() if k != "problems"}, "problems": problems})


class Importer:
    def __init__(
        self,
        vault: Vault,
        source_path: str | Path,
        mailbox: str,
        *,
        kind: str | None = None,
        follow_symlinks: bool = False,
        actor: str | None = None,
        on_behalf_of: str | None = None,
        clock: Callable[[], datetime] = now,
        progress: Callable[..., None] | None = None,
        readahead: ReadAhead | None = None,
    ):
        self.vault = vault
        self.readahead = readahead  # the run's read-ahead process (none given: run starts one)
        self.source = open_source(source_path, kind, follow_symlinks=follow_symlinks)
        notes = []
        cyrus = cyrus_folder_name(mailbox)
        if cyrus != mailbox and vault.catalog.folder_id(mailbox, exact=True) is None:
            notes.append(f"{mailbox} is Cyrus's {cyrus} (a user's INBOX is user/NAME): imported into {cyrus}")
            mailbox = cyrus
        self.mailbox = mailbox
        self.live_folder = False
        self.already: _Archived | None = None
        self.actor = actor
        self.on_behalf_of = on_behalf_of  # whom an admin (the actor) imports for: on import.run
        self.time = format_time(clock())
        self.progress = progress or (lambda n=1, **kw: None)
        self.batch = vault.config["import"]["batch_messages"]
        self.batch_bytes = vault.config["import"]["batch_bytes"]
        self.origin = f"{self.source.kind}:{Path(self.source.path).resolve()}"
        self.report = ImportReport(str(source_path), self.source.kind, mailbox, notes=notes)

    def count(self) -> int:
        return self.source.count()

    # ------------------------------------------------------------ the run

    def run(self) -> ImportReport:
        """One snapshot run; the search index is current when it returns (Vault.bulk)."""
        own = self.readahead is None
        if own:
            self.readahead = start_readahead()
        try:
            with self.vault.bulk():
                return self._run()
        finally:
            self.source.tree.close()  # the directories kept open for reading its files
            if own and self.readahead is not None:
                self.readahead.close()
                self.readahead = None

    def _run(self) -> ImportReport:
        started = _time.monotonic()
        catalog = self.vault.catalog
        self.mailbox_id, self.uidvalidity = self._folder()
        self.report.mailbox_id = self.mailbox_id
        live = {row["source_key"]: row for row in catalog.live_items(self.mailbox_id, self.origin)}
        if self.live_folder:
            self.next_uid = catalog.next_uid(self.mailbox_id, HISTORY_UIDVALIDITY)
            others = [r for r in catalog.live_items(self.mailbox_id) if r["origin"] != self.origin]
            self.already = _Archived(others)
            renumbered: list[tuple[None, dict]] = []
        else:
            self.next_uid = catalog.next_uid(self.mailbox_id)
            renumbered = self._renumbered(live)
        seen: set[str] = set()
        committed_bytes = 0
        # closed when the loop ends, however: no read is under way once _run returns (run closes
        # the directories the reads use)
        with contextlib.closing(self._prefetched(self.source.scan(), live)) as messages:
            for found, payload in messages:
                if isinstance(found, SourceProblem):
                    self.report.problems.append(found)
                    if found.key:
                        seen.add(found.key)
                    continue
                if found.key in seen:
                    self.report.problems.append(
                        SourceProblem(
                            found.path, f"same message key {found.key!r} seen twice; kept the first"
                        )
                    )
                    continue
                seen.add(found.key)
                if found.warning:
                    self.report.problems.append(SourceProblem(found.path, found.warning))
                existing = live.get(found.key)
                if existing is None:
                    self._append(found, payload)
                else:
                    self._compare_flags(existing, found)
                self.progress(1)
                if (
                    self.vault.pending >= self.batch
                    or self.report.bytes_read - committed_bytes >= self.batch_bytes
                ):
                    self.vault.commit()
                    committed_bytes = self.report.bytes_read
        for key, row in [*live.items(), *renumbered]:
            if key not in seen:
                self._record(Kind.MESSAGE_EXPUNGED, row["item"], None)
                self.report.expunged += 1
        if self.report.changed:
            self._record(
                Kind.IMPORT_RUN,
                self.mailbox_id,
                {
                    "source": self.origin,
                    "mailbox": self.mailbox,
                    "appended": self.report.appended,
                    "expunged": self.report.expunged,
                    "flag_changes": self.report.flag_changes,
                    "problems": len(self.report.problems),
                    **({"on_behalf_of": self.on_behalf_of} if self.on_behalf_of else {}),
                },
            )
        self.vault.commit()
        self.report.seconds = _time.monotonic() - started
        return self.report

    def _renumbered(self, live: dict) -> list[tuple[None, dict]]:
        """A Cyrus folder whose UIDVALIDITY changed was recreated or reconstructed: its UIDs
        (our keys) now name other messages. Archived items of the old numbering leave ``live``
        (to be recorded as expunged) and the folder's messages are archived again under the
        new one, content stored once."""
        source = self.source.uidvalidity
        if not source:
            return []
        old = {k: r for k, r in live.items() if ItemId.parse(r["item"]).uidvalidity != source}
        if not old:
            self.uidvalidity = source  # new items follow the server's numbering
            return []
        self.report.problems.append(
            SourceProblem(
                str(self.source.path),
                (
                    f"UIDVALIDITY is {source}, the archive's {self.mailbox} had {self.uidvalidity}: the folder was "
                    f"recreated on the server; {len(old)} archived message(s) recorded as expunged under the old "
                    "numbering, the folder's messages archived again under the new one"
                ),
            )
        )
        self.uidvalidity = source
        for key in old:
            del live[key]
        return [(None, row) for row in old.values()]

    def _record(self, kind: str, item: str, data: dict | None):
        return self.vault.record(kind, item=item, data=data, actor=self.actor, time=self.time)

    def _folder(self) -> tuple[str, int]:
        catalog = self.vault.catalog
        archived = catalog.folder_id(self.mailbox)
        folder = catalog.folder(archived) if archived is not None else None
        if archived is not None and folder is not None and folder["deleted_at"] is None:
            if catalog.has_events_for(archived):
                # its UIDs are Cyrus's: history is numbered apart, under HISTORY_UIDVALIDITY
                self.live_folder = True
                return archived, HISTORY_UIDVALIDITY
            return archived, folder["uidvalidity"]
        mailbox_id = self.source.mailbox_id
        if not mailbox_id or catalog.folder(mailbox_id) is not None:
            mailbox_id = new_mailbox_id()
        uidvalidity = self.source.uidvalidity or int(_time.time())
        self._record(Kind.FOLDER_CREATED, mailbox_id, {"name": self.mailbox, "uidvalidity": uidvalidity})
        return mailbox_id, uidvalidity

    def _prefetched(self, found_iter, live: dict):
        """(found, its read slot or None): new messages of a file source are read and hashed a
        little ahead, in order, by the read-ahead process (readahead.py), READ_CHUNK to a
        request; the others (an mbox's, or all when there is no such process) are read by the
        writer as it takes them. On a vault with no dictionary yet the first DICTIONARY_SAMPLE
        messages are read first, so one can be trained from them before anything is compressed
        (in a bulk run, on a thread while the writer goes on: ContentStore.ensure_dictionary)."""
        found_iter = iter(found_iter)
        window: deque = deque()
        readahead = self.readahead
        tree = readahead.tree(self.source.tree) if readahead is not None and readahead.alive else 0
        chunks = _Chunks(readahead, tree) if readahead is not None and tree else None

        def slot_of(found, *, now: bool = False) -> _Ahead | _Done | None:
            if not isinstance(found, SourceMessage) or found.key in live:
                return None
            if chunks is not None and found.rel is not None:
                return chunks.add(found.rel)
            return _Done(found) if now else None

        try:
            if not self.vault.store.dictionary and not self.vault.store.training:
                head = [
                    (found, slot_of(found, now=True))
                    for found in itertools.islice(found_iter, DICTIONARY_SAMPLE)
                ]
                if chunks is not None:
                    chunks.submit()
                samples = []
                for found, slot in head:
                    try:
                        got = slot.result(found) if slot is not None else None
                    except OSError:
                        continue  # reported when the message itself is processed
                    if got is not None and got.data is not None:
                        samples.append(got.data)
                # trained meanwhile when the store compresses ahead: the writer goes on
                self.vault.store.ensure_dictionary(samples, background=True)
                window.extend(head)
            for found in found_iter:
                slot = slot_of(found)
                window.append((found, slot))
                if len(window) > PREFETCH_WINDOW:
                    yield window.popleft()
            if chunks is not None:
                chunks.submit()
            while window:
                yield window.popleft()
        finally:
            if readahead is not None and tree:
                readahead.release(tree)

    def _append(self, msg: SourceMessage, payload: _Ahead | _Done | None = None) -> None:
        try:
            got = payload.result(msg) if payload is not None else read_of(msg.read())
            if got.data is None and not self.vault.store.exists(got.bid):
                # a copy of content this run read before, and did not store (found archived)
                got = read_of(msg.read())
        except OSError as e:
            self.report.problems.append(
                SourceProblem(msg.path, f"cannot read: {e.strerror or e}", unreadable=True)
            )
            return
        if not got.mail_like:
            self.report.problems.append(
                SourceProblem(msg.path, "does not look like a mail message (binary?): archived as it is")
            )
        internal_date = format_time(msg.internal_date)
        message_id = got.message_id
        if self.already is not None and self.already.take(got.bid, message_id, internal_date):
            self.report.already_archived += 1
            return
        blob = got.bid
        if got.data is not None:
            blob = self.vault.store.put(got.data, bid=got.bid)
            self.vault.offer_content(blob, got.data)
        if msg.uid is not None and self.source.kind == "cyrus" and not self.live_folder:
            uid = msg.uid
            self.next_uid = max(self.next_uid, uid + 1)
        else:
            uid = self.next_uid
            self.next_uid += 1
        item = ItemId(self.mailbox_id, self.uidvalidity, uid)
        self._record(
            Kind.MESSAGE_APPENDED,
            str(item),
            message_data(
                blob=blob,
                size=got.size,
                internal_date=internal_date,
                flags=normalise_flags(msg.flags),
                mailbox=self.mailbox,
                message_id=message_id,
                origin=self.origin,
                key=msg.key,
            ),
        )
        self.report.appended += 1
        self.report.bytes_read += got.size

    def _compare_flags(self, existing: dict, msg: SourceMessage) -> None:
        old = set(existing["flags"])
        new = set(normalise_flags(msg.flags))
        if old == new:
            self.report.unchanged += 1
            return
        if new - old:
            self._record(Kind.FLAGS_SET, existing["item"], {"flags": sorted(new - old)})
        if old - new:
            self._record(Kind.FLAGS_CLEARED, existing["item"], {"flags": sorted(old - new)})
        self.report.flag_changes += 1


class _Archived:
    """The messages a live folder already holds (from the server, or another source): a
    source message is one of them when its bytes are the same (content hash), or when its
    Message-ID and its internal date (to the second) are. Each archived message stands for
    one source message at most, so two copies in the source against one archived keep one."""

    def __init__(self, items: list[dict]):
        self.by_blob: dict[str, list[str]] = {}
        self.by_message: dict[tuple[str, str], list[str]] = {}
        for row in items:
            self.by_blob.setdefault(row["blob"], []).append(row["item"])
            if row.get("message_id") and row.get("internal_date"):
                key = (row["message_id"], row["internal_date"][:19])
                self.by_message.setdefault(key, []).append(row["item"])
        self.taken: set[str] = set()

    def take(self, blob: str, message_id: str | None, internal_date: str) -> bool:
        candidates = list(self.by_blob.get(blob, ()))
        if message_id:
            candidates += self.by_message.get((message_id, internal_date[:19]), ())
        for item in candidates:
            if item not in self.taken:
                self.taken.add(item)
                return True
        return False


# a progress display for one source: called with the source and its message count, it gives a
# context manager whose value is the importer's ``progress`` callback
Progress = Callable[[str, int], contextlib.AbstractContextManager[Callable[..., None]]]


def import_sources(
    vault: Vault,
    caller,
    targets: list[tuple[str, str]],
    *,
    kind: str | None = None,
    follow_symlinks: bool = False,
    progress: Progress | None = None,
) -> tuple[list[ImportReport], list[str]]:
    """Import each ``(source, mailbox)`` as ``caller`` (whose roles the caller checked) in one
    bulk run of ``vault`` (the writer): the search index commits after the last source. The
    reports, and why each source that could not be opened was not."""
    from vault.ingest.importers.base import SourceError

    reports: list[ImportReport] = []
    failed: list[str] = []
    readahead = start_readahead()
    with vault.bulk(), contextlib.ExitStack() as stack:
        if readahead is not None:
            stack.callback(readahead.close)
        for source, mailbox in targets:
            try:
                importer = Importer(
                    vault,
                    source,
                    mailbox,
                    kind=kind,
                    follow_symlinks=follow_symlinks,
                    actor=caller.actor,
                    on_behalf_of=caller.on_behalf_of,
                    readahead=readahead,
                )
                if progress is None:
                    reports.append(importer.run())
                    continue
                with progress(source, importer.count()) as advance:
                    importer.progress = advance
                    reports.append(importer.run())
            except SourceError as e:
                failed.append(str(e))
    return reports, failed
