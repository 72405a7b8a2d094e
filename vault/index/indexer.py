"""The search index: Tantivy on disk, one document per unique message content.

It follows the ledger as the catalog does: ``apply(entries)`` after each commit indexes the
blob of every new message (once, however many folders hold it) and drops the document of a
blob retention purged for good; ``state.json`` (beside the index's files, written after each
Tantivy commit: the last ledger entry applied and the number of documents then) lets a writer
that opens it catch up on whatever it missed, so an index that fell behind (a crash, a full
disk) heals on the next open, and lets every opener see cheaply that the index is behind the
ledger or has lost documents (vault/derived.py). Rebuilds are made aside and swapped in whole
(generations.py): ``rebuild_aside``. Tantivy allows one writer per directory across processes:
only the vault's writer opens it writable; searches open it read-only and see every commit.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import tantivy

from vault.entries import CONTENT_KINDS, Kind
from vault.index import generations
from vault.index import schema as index_schema
from vault.index.copies import describe_copies
from vault.index.flags import flag_clauses
from vault.index.flags import search as flag_search
from vault.index.query import And, Node, Where, parse
from vault.index.scope import FolderKeys, Scope, count_matches
from vault.index.words import has_cjk, index_tokens
from vault.model import custodian_of, format_time

if TYPE_CHECKING:
    from vault.index.textpool import TextPool

log = logging.getLogger(__name__)
SEQ_FILE = "applied_seq"  # before state.json: the applied seq alone
STATE_FILE = "state.json"
WRITER_HEAP = 64 << 20


class IndexOutdated(RuntimeError):
    """The index on disk has another schema; only the vault's writer may rebuild it."""


class IndexBusy(RuntimeError):
    """Another writer (in this process or another) has the index open."""


class IndexDamaged(RuntimeError):
    """The index on disk cannot be opened or read (a broken meta.json, missing files)."""


def damaged(path: Path, why: str) -> IndexDamaged:
    return IndexDamaged(
        f"search index {path} is damaged ({' '.join(why.split())[:200]}): 'vaultctl verify --repair' "
        "rebuilds it from the ledger (the vault's writer, an import say, does it too when it opens)"
    )


@dataclass
class Hit:
    blob: str
    date: str | None
    from_: str
    subject: str
    custodians: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    score: float = 0.0
    expunged: bool = False  # every copy found is expunged (it is in the archive only)
    message_id: str | None = None
    sources: list[str] = field(default_factory=list)  # where each copy was imported from: "ORIGIN KEY"


class SearchIndex:
    def __init__(self, path: Path, index: tantivy.Index, writable: bool, zone: tzinfo = UTC):
        self.path = path
        self.zone = zone  # the site's: bare dates in queries are read in it (vault/dates.py)
        self.index = index
        self.schema = index.schema
        self.writable = writable
        try:
            self._writer = index.writer(WRITER_HEAP, 1) if writable else None
        except ValueError as e:
            if "LockBusy" not in str(e):
                raise
            raise IndexBusy(
                f"search index {path} is open for writing elsewhere (one writer at a time)"
            ) from None
        self._pending: set[str] = set()
        self._dirty = False  # documents added or deleted since the last commit
        self._unflushed: int | None = None  # the last entry applied but not yet committed
        self._data: dict[str, bytes] = {}
        self._pool: TextPool | None = None  # text extraction in a worker process (Vault.bulk)
        self._added: set[str] = set()  # while a pool is set: blobs added, committed since too
        # while a pool is set: content applied whose text the worker has not sent yet, added
        # when it has (blob -> the seq of its entry, its bytes); see apply
        self._waiting: dict[str, tuple[int, bytes]] = {}
        self._folder_keys = FolderKeys()
        self._view: tempfile.TemporaryDirectory | None = None  # see _read_only_view

    @classmethod
    def open(cls, path: Path | str, writable: bool = False, zone: tzinfo = UTC) -> SearchIndex:
        """The live index at ``path`` (its current generation, generations.py). A writer
        makes a first, empty one where there is none. IndexDamaged when what is there cannot
        be opened, IndexOutdated when another version of vault built it (a writer rebuilds
        it: ``rebuild_aside``). ``zone``: the site's, for bare dates in queries."""
        path = Path(path)
        directory = generations.live(path)
        if directory is None:
            if not writable:
                raise FileNotFoundError(f"no search index at {path}: run 'vaultctl rebuild' (or any import)")
            directory = generations.create(path)
        elif writable:
            generations.sweep(path)  # rebuilds that died
        return cls.open_directory(directory, writable, zone)

    @classmethod
    def open_directory(cls, path: Path, writable: bool, zone: tzinfo = UTC) -> SearchIndex:
        """One generation's directory, as ``open`` found it (or a new one being built)."""
        view = None
        if not (path / "meta.json").exists() and (not writable or _holds_anything(path)):
            raise damaged(path, "no meta.json")
        if not writable and not os.access(path, os.W_OK):
            view = _read_only_view(path)
        try:
            index = tantivy.Index(index_schema.build(), path=view.name if view else str(path), reuse=True)
        except ValueError as e:
            if view is not None:
                view.cleanup()
            if "schema does not match" not in str(e):
                raise damaged(path, str(e)) from None
            raise IndexOutdated(
                f"search index {path} was built by another version of vault: the vault's "
                "writer rebuilds it when it next opens (or run 'vaultctl rebuild')"
            ) from None
        except OSError as e:
            if view is not None:
                view.cleanup()
            raise damaged(path, str(e)) from None
        index_schema.register(index)
        opened = cls(path, index, writable, zone)
        opened._view = view
        return opened

    @classmethod
    def of(cls, config, writable: bool = False) -> SearchIndex:
        """The vault's index (``[index] path``), reading queries in the site's zone."""
        from vault.dates import site_zone

        return cls.open(config.path("index"), writable, site_zone(config))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None
        if self._view is not None:
            self._view.cleanup()
            self._view = None

    # ------------------------------------------------------------ writing

    def _state(self) -> dict:
        try:
            state = json.loads((self.path / STATE_FILE).read_text())
            if isinstance(state, dict) and isinstance(state.get("applied_seq"), int):
                return state
        except FileNotFoundError:
            pass
        except ValueError:
            return {"applied_seq": 0, "docs": None, "unreadable": True}
        try:  # an index from before state.json
            return {"applied_seq": int((self.path / SEQ_FILE).read_text()), "docs": None}
        except (FileNotFoundError, ValueError):
            return {"applied_seq": 0, "docs": None}

    @property
    def applied_seq(self) -> int:
        """The last ledger entry this index has applied (and committed)."""
        return self._state()["applied_seq"]

    @property
    def recorded_docs(self) -> int | None:
        """How many documents the index held at its last commit (None: not recorded)."""
        docs = self._state().get("docs")
        return docs if isinstance(docs, int) else None

    def _set_applied_seq(self, seq: int) -> None:
        tmp = self.path / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"applied_seq": seq, "docs": self.index.searcher().num_docs}))
        os.replace(tmp, self.path / STATE_FILE)

    def state_problem(self, ledger_size: int) -> str | None:
        """What a cheap look finds wrong: behind the ledger, or documents lost since the
        last commit (a reader reloads first, so it sees every commit)."""
        state = self._state()
        if state.get("unreadable"):
            return f"search index {self.path}: its {STATE_FILE} is unreadable"
        if state["applied_seq"] < ledger_size:
            return (
                f"search index {self.path} is behind the ledger (it has applied entry "
                f"{state['applied_seq']} of {ledger_size})"
            )
        self.index.reload()  # a writer too: documents deleted behind its back
        docs, have = state.get("docs"), self.index.searcher().num_docs
        if isinstance(docs, int) and docs != have:
            return f"search index {self.path} holds {have} document(s), its last commit {docs}"
        return None

    def keys(self) -> list[int]:
        """The ``key`` (schema.blob_key) of every live document, one per document."""
        searcher = self._searcher()
        if not searcher.num_docs:
            return []
        hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs).hits
        return [int(k) for k in searcher.fast_field_values("key", [a for _, a in hits]) if k is not None]

    @property
    def pool(self) -> TextPool | None:
        return self._pool

    @pool.setter
    def pool(self, pool: TextPool | None) -> None:
        """A bulk run's text pool (set), or its end (None). While one is set, the blobs this
        writer added stay known as indexed after each commit (an import's copies of content it
        indexed a batch ago cost no query then). Unset, the documents still waiting for
        their text are added first (the worker's, or extracted here)."""
        if pool is not self._pool:
            self._add_waiting(wait=True)
        self._pool = pool
        self._added.clear()

    def indexed(self, blob: str) -> bool:
        if blob in self._pending or blob in self._added or blob in self._waiting:
            return True
        query = tantivy.Query.term_query(self.schema, "blob", blob)
        return count_matches(self.index.searcher(), query) > 0

    def _writer_or_fail(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise RuntimeError(f"search index {self.path} is open read-only (or closed)")
        return self._writer

    def offer(self, blob: str, data: bytes) -> None:
        """Bytes the caller already holds, for an ``apply`` soon (spares a store read; with a
        pool, its text is extracted meanwhile)."""
        if blob in self._data:
            return
        self._data[blob] = data
        if self._pool is not None and blob not in self._pending and blob not in self._added:
            # content indexed before this run is extracted for nothing, on the other core;
            # apply's own indexed() check then drops it (a query here would cost every message)
            self._pool.submit(blob, data)

    def add(self, blob: str, data: bytes) -> bool:
        """Index this content unless it already is; False when it was."""
        self._writer_or_fail()
        if self.indexed(blob):
            return False
        self._add_new(blob, data)
        return True

    def _add_new(self, blob: str, data: bytes) -> None:
        """Index content that is not indexed (the caller asked ``indexed``)."""
        from vault.index.text import extract  # the email package: only writers pay for it

        writer = self._writer_or_fail()
        f = self._pool.take(blob) if self._pool is not None else None
        if f is None:
            f = extract(data)
        doc = tantivy.Document(
            blob=blob, key=index_schema.blob_key(blob), size=f.size, attachment=1 if f.has_attachment else 0
        )
        for name, value in (("subject", f.subject), ("body", f.body), ("from", f.from_)):
            _add_text(doc, name, value)
        for name, value in (("to", f.to), ("cc", f.cc), ("bcc", f.bcc)):
            if value:
                _add_text(doc, name, value)
        for name in f.filenames:
            _add_text(doc, "filename", name)
        if f.message_id:
            doc.add_text("messageid", f.message_id)
        if f.date is not None:
            doc.add_date("date", f.date)
        writer.add_document(doc)
        self._pending.add(blob)
        self._dirty = True

    @property
    def uncommitted(self) -> int:
        """Documents added since the last commit (or waiting to be)."""
        return len(self._pending) + len(self._waiting)

    def _add_waiting(self, *, wait: bool) -> None:
        """Add the documents that waited for their text: those whose text is back (``wait``:
        all, waiting for the worker; what it cannot give is extracted here)."""
        for blob, (_, data) in list(self._waiting.items()):
            if wait or self._pool is None or not self._pool.pending(blob):
                del self._waiting[blob]
                self._add_new(blob, data)

    def remove(self, blob: str) -> None:
        self._waiting.pop(blob, None)
        self._writer_or_fail().delete_documents_by_term("blob", blob)
        self._pending.discard(blob)
        self._added.discard(blob)
        self._dirty = True

    def commit(self, applied_seq: int | None = None) -> None:
        self._writer_or_fail().commit()
        self.index.reload()
        if self._pool is not None:
            self._added |= self._pending
        self._pending.clear()
        self._dirty = False
        if applied_seq is not None:
            self._set_applied_seq(applied_seq)

    def apply(
        self, entries: Iterable, read_blob: Callable[[str], bytes], catalog, *, commit: bool = True
    ) -> int:
        """Follow committed ledger entries (after the catalog applied them); commit, or with
        ``commit=False`` leave the documents for a later apply or :meth:`flush` to commit
        (``applied_seq`` stays behind them, so a crash meanwhile re-applies them on the next
        open). Returns the number of documents added."""
        added, last = 0, None
        applied = self.applied_seq
        self._add_waiting(wait=False)
        for entry in entries:
            last = entry.seq
            if entry.seq <= applied:
                continue
            data = entry.data or {}
            blob = data.get("blob")
            if not blob:
                continue
            if entry.kind in CONTENT_KINDS:
                # a replay (catch-up, rebuild) skips content every item of which was purged
                # since: it is not searchable, and its blob may be gone
                if not self.indexed(blob) and catalog.blobs_referenced([blob]):
                    content = self._data.pop(blob, None)
                    if content is None:
                        content = read_blob(blob)
                    if self._pool is not None and self._pool.pending(blob):
                        # its text is on the way: added by a later apply or flush, so the
                        # writer goes on meanwhile (the run's last flush waits for it)
                        self._waiting[blob] = (entry.seq, content)
                        self._dirty = True
                    else:
                        self._add_new(blob, content)
                    added += 1
            elif entry.kind == Kind.RETENTION_PURGED and not catalog.blobs_referenced([blob]):
                self.remove(blob)
        self._data.clear()
        if self._pool is not None:
            self._pool.forget(keep=self._waiting)
        if last is not None and last > applied:
            if self._dirty:
                self._unflushed = last
                if commit:
                    self.flush()
            else:  # nothing to index (an audit entry, a flag change): no Tantivy commit
                self._set_applied_seq(last)
        return added

    def flush(self, *, wait: bool = True) -> None:
        """Commit what :meth:`apply` left uncommitted. ``wait=False``: without the documents
        still waiting for their text, ``applied_seq`` then staying before the first of them
        (a crash meanwhile makes the next open apply them again); they stay for the next flush."""
        self._add_waiting(wait=wait)
        if self._dirty and self._unflushed is not None:
            if self._waiting:
                self.commit(min(seq for seq, _ in self._waiting.values()) - 1)
                self._dirty = True  # what waits is still to commit
                return
            self.commit(self._unflushed)
        self._unflushed = None

    def catch_up(self, ledger, read_blob: Callable[[str], bytes], catalog) -> int:
        if self.applied_seq >= ledger.size:
            return 0
        return self.apply(ledger.entries(self.applied_seq + 1), read_blob, catalog)

    def clear(self) -> None:
        self._writer_or_fail().delete_all_documents()
        self._added.clear()
        self._waiting.clear()
        self._dirty = True
        self.commit(0)

    # ------------------------------------------------------------ reading

    def _searcher(self) -> tantivy.Searcher:
        """A reader sees what another process (the vault's writer) committed since it opened:
        Tantivy's own reload follows commits only after a delay, a reload now costs ~0.1 ms."""
        if self._writer is None:
            self.index.reload()
        return self.index.searcher()

    def __len__(self) -> int:
        return self._searcher().num_docs

    def _node(self, text: str, custodian: str | None) -> Node:
        node = parse(text, self.zone)
        return And((node, Where("custodian", custodian))) if custodian else node

    def count(self, text: str, catalog, custodian: str | None = None, at: str | None = None) -> int:
        node = self._node(text, custodian)
        if flag_clauses(node):
            return len(self._flagged(node, catalog, at))
        return Scope(node, catalog, self.schema, self._folder_keys).count(self._searcher())

    def search(
        self, text: str, catalog, custodian: str | None = None, limit: int = 50, at: str | None = None
    ) -> list[Hit]:
        """Newest first (by the message's Date), each with the items, folders (current names)
        and custodians that satisfy the query; raises QuerySyntaxError on a bad query.
        ``at``: the time is: clauses judge flags at (None: now)."""
        node = self._node(text, custodian)
        if flag_clauses(node):
            return self._flagged(node, catalog, at)[:limit]
        return self._search(node, catalog, limit)

    def _flagged(self, node: Node, catalog, at: str | None) -> list[Hit]:
        """Every hit of a query with is: clauses (flags.py)."""

        def run(bound: Node | bool) -> list[Hit]:
            every = Scope(bound, catalog, self.schema, self._folder_keys).count(self._searcher())  # type: ignore[arg-type]
            return self._search(bound, catalog, max(every, 1))  # type: ignore[arg-type]

        return flag_search(node, flag_clauses(node), run, catalog, at)

    def _search(self, node: Node, catalog, limit: int) -> list[Hit]:
        scope = Scope(node, catalog, self.schema, self._folder_keys)
        searcher = self._searcher()
        hits = []
        for address in scope.find(searcher, limit):
            doc = searcher.doc(address)
            date = doc.get_first("date")
            hits.append(
                Hit(
                    _blob_of(doc),
                    format_time(date) if date else None,
                    doc.get_first("from") or "",
                    doc.get_first("subject") or "",
                )
            )

        def run(query: tantivy.Query, limit: int) -> set[str]:
            return {_blob_of(searcher.doc(a)) for _, a in searcher.search(query, limit).hits}

        _locate(hits, scope.items([h.blob for h in hits], run), catalog)
        return hits


def _holds_anything(path: Path) -> bool:
    """Whether a directory without meta.json holds an index's files (a damaged index), not
    just the lock files of a first open."""
    return any(not c.name.startswith(".tantivy-") for c in path.iterdir()) if path.is_dir() else False


def rebuild_aside(path: Path | str, fill: Callable[[SearchIndex], object], zone: tzinfo = UTC) -> SearchIndex:
    """A new generation of the index at ``path``, filled by ``fill`` (from the ledger) while
    the live one still answers, then swapped in (generations.py); returns it, open to write.
    The caller closes its own writer of the old generation first (one writer per vault)."""
    from vault import faults

    path = Path(path)
    gen = generations.new_generation(path)
    fresh = SearchIndex.open_directory(gen, writable=True, zone=zone)
    try:
        fill(fresh)
        fresh.flush()
        faults.point(BUILT)
        fresh.commit(fresh.applied_seq)  # state.json with the final document count
    except BaseException:
        fresh.close()
        raise
    generations.swap(path, gen)
    faults.point(SWAPPED)
    return fresh


# named points where tests kill a rebuild (vault/faults.py)
BUILT = "index.built"
SWAPPED = "index.swapped"


def _read_only_view(path: Path) -> tempfile.TemporaryDirectory:
    """Tantivy opens its lock files for writing even to read, which a read-only file system
    refuses: a reader there gets a private directory of links to the index's files (meta.json
    copied, so the view stays the index as it was when opened) with lock files of its own."""
    view = tempfile.TemporaryDirectory(prefix="vault-index-view-")
    for child in path.iterdir():
        if child.name.startswith(".tantivy-") and child.name.endswith(".lock"):
            continue
        if child.name == "meta.json":
            shutil.copyfile(child, Path(view.name) / child.name)
        else:
            os.symlink(child.absolute(), Path(view.name) / child.name)
    return view


def _blob_of(doc: tantivy.Document) -> str:
    """The content ID every document is added with (see ``add``)."""
    blob = doc.get_first("blob")
    if not isinstance(blob, str):
        raise RuntimeError(f"search index document without a blob ID ({blob!r}): run 'vaultctl rebuild'")
    return blob


def _add_text(doc: tantivy.Document, name: str, value: str) -> None:
    """A text value, tokenised by Tantivy, or by words.py when it holds CJK (stored as is)."""
    if has_cjk(value):
        tokens = list(itertools.starmap(tantivy.Token, index_tokens(value)))
        doc.add_pre_tokenized_text(name, tantivy.PreTokenizedString(value, tokens))
    else:
        doc.add_text(name, value)


def _locate(hits: list[Hit], items: dict[str, list[dict]], catalog) -> None:
    """Where each hit's content lives: items, folders by current name, custodians."""
    names: dict[str, str] = {}
    for hit in hits:
        rows = items.get(hit.blob, [])
        describe_copies(hit, rows)
        for row in rows:
            mailbox = row["mailbox_id"]
            if mailbox not in names:
                names[mailbox] = catalog.folder_name(mailbox) or mailbox
            hit.item_ids.append(row["item"])
            if names[mailbox] not in hit.folders:
                hit.folders.append(names[mailbox])
            owner = custodian_of(names[mailbox])
            if owner and owner not in hit.custodians:
                hit.custodians.append(owner)
