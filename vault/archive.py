"""The Vault: one home directory's store, ledger and catalog, opened together.

Writers record ledger entries (with the payloads they reference) and ``commit``:
blobs are flushed to the store first, then the ledger commits (its signed
checkpoint is the commit point), then the catalog folds the new entries in, then the
new checkpoint goes to the witnesses (vault/witness/), which every open consults. A crash
anywhere leaves at worst unreferenced blobs, or a catalog that catches up on the next
open: never an entry whose blob is missing.
"""

from __future__ import annotations

import copy
import errno
import functools
import getpass
import logging
import os
import sqlite3
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from vault.config import CONFIG_NAME, DEFAULTS, VAULT, Config, render, write_new
from vault.store import keys
from vault.store.backends.base import StoreFull
from vault.store.cas import ContentStore
from vault.store.catalog import Catalog
from vault.store.ledger import Entry, Ledger, LedgerError
from vault.store.sqlite import writable
from vault.witness.witnesses import Witnesses

if TYPE_CHECKING:  # Tantivy loads only when a writer opens the index
    from vault.index.indexer import SearchIndex


log = logging.getLogger(__name__)


class VaultBusy(Exception):
    pass


class VaultReadOnly(VaultBusy):
    """The home cannot be written (a read-only file system, or not this user's): it has no
    writer here; what must be recorded goes to the vault service, like while another writes."""


def home_writable(config: Config) -> bool:
    """Whether this process can write the home: the home itself, the ledger's directory and
    the directories of the catalog and the blob-location index (vault/store/sqlite.py)."""
    places = [config.home, config.path("ledger"), config.path("catalog").parent]
    places.append(config.path("store", "index_path").parent)
    return all(writable(p) for p in places if os.path.exists(p))


# ------------------------------------------------------------ a full disk

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Tantivy's indexing threads die of a full disk without saying so: only a nearly full home tells
_TANTIVY_DIED = ("index writer was killed", "Worker thread failed")
_NEARLY_FULL = 16 << 20  # bytes free


def _says_full(exc: BaseException) -> bool:
    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc)
    if isinstance(exc, ValueError):  # tantivy reports its IO errors as ValueError
        return any(f"os error {n})" in str(exc) for n in _FULL_ERRNOS)
    return False


def free_bytes(path: Path | str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk_full(exc: BaseException, home: Path | str | None = None) -> BaseException | None:
    """The exception, of ``exc`` or those it was raised while handling, that says the home's
    file system is full, whoever raised it: the store (StoreFull), a write (ENOSPC, EDQUOT),
    SQLite ("database or disk is full"), Tantivy (an IO error naming os error 28 or 122, or,
    with ``home`` nearly full, an indexing thread that died). None if none does."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_full(current):
            return current
        if (
            home is not None
            and isinstance(current, ValueError)
            and any(t in str(current) for t in _TANTIVY_DIED)
        ):
            free = free_bytes(home)
            if free is not None and free < _NEARLY_FULL:
                return OSError(
                    errno.ENOSPC, f"the search index could not write ({free >> 10} KiB free)", str(home)
                )
        current = current.__cause__ or current.__context__
    return None


class DiskFull(StoreFull):
    """A commit that met a full disk, saying where; the ledger's last checkpoint stands."""


def full_disk_message(exc: BaseException, writing: str = "") -> str:
    """One line for the operator: what was full, and that committing again is safe."""
    if isinstance(exc, DiskFull):
        return str(exc)
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
    detail = " ".join(detail.split())  # Tantivy's and SQLite's texts may span lines
    return (
        f"disk full{' writing ' + writing if writing else ''}: {where}{detail}; nothing committed was lost "
        "(the ledger's last signed checkpoint stands): free space and run the command again, it "
        "resumes where this one stopped"
    )


@contextmanager
def _full(what: str, path):
    """A full disk met while writing ``what`` (at ``path``) becomes one DiskFull naming it."""
    try:
        yield
    except Exception as e:
        full = disk_full(e, path)
        if full is None:
            raise
        raise DiskFull(full_disk_message(full, f"{what} ({path})")) from e


class VaultExists(Exception):
    pass


@functools.cache
def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid (containers)
        return f"uid:{os.getuid()}"


def actor_of(config: Config, name: str | None = None) -> str:
    """Who acts, as the ledger records it: ``name`` (default: the OS user), or that person's
    stable directory id when ``[ldap] url`` is set and the directory knows the name (names
    change, ids don't). An unreachable directory costs one short timeout and records the name."""
    name = name or default_actor()
    if not config["ldap"]["url"]:
        return name
    from vault.directory import LDAP, Directory

    directory = Directory.from_config(config)
    try:
        user = directory.resolve(name)
    finally:
        directory.close()
    return user.id if user.source == LDAP else name


def _open_catalog(config: Config, ledger: Ledger, writer: bool, read_only: bool, catch_up: bool) -> Catalog:
    """The catalog, caught up with the ledger (``catch_up``): in its file, or, for a reader that
    cannot write the file (a read-only or full file system), in a private copy in memory."""
    try:
        catalog = Catalog.from_config(config, read_only=read_only)
    except sqlite3.OperationalError:
        if not read_only:
            raise
        catalog = Catalog.empty()  # none to read: the ledger has it all
    if not catch_up or catalog.applied_seq >= ledger.size:
        return catalog
    if catalog.read_only:
        catalog.into_memory()
    try:
        catalog.catch_up(ledger)
    except Exception as e:
        if writer or disk_full(e, config.path("catalog").parent) is None:
            catalog.close()
            raise
        catalog.into_memory()
        catalog.catch_up(ledger)
    return catalog


def _sealer(store: ContentStore, ledger_path: Path):
    """Sealed ledger segments go into the blob store, durably, before they count as sealed,
    where that store is somewhere else (a bucket, another disk). A local store on the ledger's
    own file system gets no copy: it would be a second copy on the same disk, ~75 bytes a mail
    message; the sealed file under ``ledger/segments`` is the one copy (docs/architecture.md 3.5)."""
    if store.backend.on_the_disk_of(ledger_path):
        return None

    def seal(segment: bytes) -> str:
        bid = store.put(segment)
        store.flush()
        return bid

    return seal


class Vault:
    def __init__(
        self,
        config: Config,
        store: ContentStore,
        ledger: Ledger,
        catalog: Catalog,
        writer: bool,
        witnesses: Witnesses | None = None,
    ):
        self.purge_finished: dict | None = None  # what open() deleted for a purge a crash interrupted
        self.config = config
        self.store = store
        self.ledger = ledger
        self.catalog = catalog
        self.writer = writer
        self.witnesses = witnesses if witnesses is not None else Witnesses(config.path("witness"), [], 0)
        self._pending: list[Entry] = []
        self._indexer: SearchIndex | None = None  # writers only (_open_index)
        self._actor: str | None = None  # who records entries that name no actor (actor_of)
        # seconds between search-index commits (0: with every ledger commit). A Tantivy commit
        # costs ~2 ms of short-lived threads and a new segment: live ingest's committer commits
        # the index at most this often, and when idle (flush_index)
        self.index_commit_interval = 0.0
        self._index_due = 0.0
        self._bulk = False  # in a bulk run (see bulk): the index commits when it ends
        self.read_only = False  # the home cannot be written here (Vault.open)
        self.index_rebuilt: str | None = None  # why open() rebuilt a search index it could not use

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def init(cls, home: Path | str, overrides: dict[str, dict] | None = None) -> Config:
        """Create a vault in ``home``: config.toml with every key (``overrides``: section ->
        key -> value, checked like the file), signing key, empty ledger, catalog and index."""
        home = Path(home)
        if (home / CONFIG_NAME).exists():
            raise VaultExists(f"{home / CONFIG_NAME} exists: this is already a vault")
        values = copy.deepcopy(DEFAULTS)
        for section, table in (overrides or {}).items():
            values.setdefault(section, {}).update(table)
        text = render(values)
        planned = Config.from_text(home, text)
        planned.require_vault()  # refuses bad overrides before writing
        key_doc = keys.new_key(planned)  # refuses a missing passphrase before writing
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)  # the home holds message text: its owner's alone
        write_new(home / CONFIG_NAME, text)
        config = Config.load(home)
        keys.install(config, key_doc)
        from vault.curve.keys import init_home_keys  # zmq: only init pays for it

        init_home_keys(home, VAULT)  # CURVE for live ingest's links (vault/curve/)
        cls.open(config, writer=True).close()
        return config

    @classmethod
    def open(
        cls, config: Config, *, writer: bool = False, catch_up: bool = True, check_witnesses: bool = True
    ) -> Vault:
        """The home's vault; ``writer`` takes the single-writer lock (VaultBusy while another
        holds it, VaultReadOnly where the home cannot be written). A reader of a home it cannot
        write writes nothing: SQLite read-only, no lock, a catalog behind the ledger caught up in
        memory (so is one whose file system is full). A ledger older than, or not consistent
        with, what its witnesses vouched for is refused (``WitnessRefused``) before anything
        reads it; ``check_witnesses=False`` (verify) opens it anyway, to report."""
        config.require_vault()
        read_only = not home_writable(config)
        if writer and read_only:
            raise VaultReadOnly(
                f"{config.home} cannot be written here (a read-only file system, or not this user's): "
                "this needs the vault's writer; commands that only read work"
            )
        store = ContentStore.from_config(config, read_only=read_only)
        try:
            ledger = Ledger.from_config(config, writable=writer, seal=_sealer(store, config.path("ledger")))
        except LedgerError as e:
            store.close()
            if "locked" in str(e):
                raise VaultBusy(f"{config.home}: {e}; try again when it has finished") from None
            raise
        catalog = vault = None
        try:
            witnesses = Witnesses.from_config(config, store.backend)
            if check_witnesses and witnesses:
                witnesses.check_open(ledger, remote=writer)
            catalog = _open_catalog(config, ledger, writer, read_only, catch_up)
            vault = cls(config, store, ledger, catalog, writer, witnesses)
            vault.read_only = read_only
            if writer:
                vault._open_index(catch_up)
                if catch_up:  # the catalog is current: what a purge still owes is known
                    from vault.purge import finish_interrupted

                    vault.purge_finished = finish_interrupted(vault)
        except BaseException:
            # release the writer lock (an open that failed, e.g. IndexBusy, must not keep it)
            for part in (vault and vault._indexer, catalog, ledger, store):
                if part is not None:
                    part.close()
            raise
        return vault

    def _open_index(self, catch_up: bool) -> None:
        """The writer keeps the search index in step with the ledger (vault/index/). One it
        cannot use (damaged, or built by another version of vault) it rebuilds from the
        ledger, aside, and swaps in (vault/index/generations.py)."""
        from vault.index.indexer import IndexDamaged, IndexOutdated, SearchIndex

        try:
            self._indexer = indexer = SearchIndex.of(self.config, writable=True)
        except (IndexDamaged, IndexOutdated) as e:
            log.warning("%s: rebuilding it from the ledger", e)
            self.rebuild_index()
            self.index_rebuilt = str(e)
            return
        if catch_up:
            with _full("the search index", indexer.path):
                indexer.catch_up(self.ledger, self.store.get, self.catalog)

    def rebuild_index(self) -> None:
        """A new search index from the ledger, built aside and swapped in whole: a rebuild
        killed half way leaves the old index answering, never a half-built one."""
        from vault.dates import site_zone
        from vault.index.indexer import rebuild_aside

        if self._indexer is not None:  # one Tantivy writer: the new generation's
            self._indexer.close()
            self._indexer = None
        path = self.config.path("index")
        with _full("the search index", path):
            self._indexer = rebuild_aside(
                path,
                lambda fresh: fresh.catch_up(self.ledger, self.store.get, self.catalog),
                site_zone(self.config),
            )

    @property
    def index(self) -> SearchIndex | None:
        """The search index, writable (writers only; None when opened read-only)."""
        return self._indexer

    def offer_content(self, blob: str, data: bytes) -> None:
        """Bytes just stored, so the index need not read them back after the commit."""
        if self._indexer is not None:
            self._indexer.offer(blob, data)

    def flush_index(self) -> None:
        """Commit what the search index was given since its last commit."""
        if self._indexer is not None:
            self._indexer.flush()
            self._index_due = _time.monotonic() + self.index_commit_interval

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A run of many commits (an import): the search index is committed when the run ends
        and every ``[import] index_commit_docs`` documents, rather than with each ledger commit (a Tantivy
        commit costs ~20-40 ms and leaves a segment to merge), and the text of each new message is
        extracted for it, and each new blob's frame compressed for the store (``store.ahead``),
        in a worker process meanwhile (vault/index/textpool.py). When the run ends the index is
        committed (unless this writer defers index commits, ``index_commit_interval``, and
        one is not due): a search then finds everything imported. A crash before that loses the
        index nothing: its applied_seq stays at its last commit and the next open catches up
        from the ledger, as after any crash. Nested runs are one run (the outermost ends it).
        A run that at least doubled the catalog compacts it (``Catalog.compact``)."""
        if self._bulk or self._indexer is None:
            yield
            return
        from vault.index.textpool import TextPool

        catalog_pages = self.catalog.page_count()
        indexer = self._indexer
        self._bulk = True
        try:
            pool: TextPool | None = TextPool()
        except OSError as e:  # no second process here: text and frames are made inline
            log.warning("text extraction and compression stay in this process: %s", e)
            pool = None
        indexer.pool = pool
        self.store.ahead = pool
        try:
            yield
        finally:
            self._bulk = False
            indexer.pool = None
            try:
                self.store.ahead = None  # the frames back are taken before the worker goes
            finally:
                if pool is not None:
                    pool.close()
        if _time.monotonic() >= self._index_due:  # as a commit would (a deferring writer's: later)
            with _full("the search index", indexer.path):
                self.flush_index()
        if not self._pending:  # a run that ended in an exception leaves its entries to close()
            self.catalog.compact(catalog_pages)

    def close(self) -> None:
        """Commit what is pending and close every part; a part that fails (a full disk) does
        not keep the others, the writer lock among them, open."""
        try:
            if self.writer and self._pending:
                self.commit()
        finally:
            try:
                if self._indexer is not None:
                    try:
                        with _full("the search index", self._indexer.path):
                            self._indexer.flush()
                    finally:
                        self._indexer.close()
            finally:
                self.catalog.close()
                self.ledger.close()
                self.store.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abandon()
        self.close()

    def abandon(self) -> None:
        """Forget what was recorded since the last commit (the next run redoes it); the
        ledger's unsigned tail is cut when the vault is next opened."""
        self._pending.clear()
        self.store.discard()

    # ------------------------------------------------------------ writing

    def record(
        self,
        kind: str,
        *,
        item: str | None = None,
        data: dict | None = None,
        actor: str | None = None,
        time: str | None = None,
    ) -> Entry:
        """Append one ledger entry; durable only after ``commit``."""
        if not self.writer:
            raise RuntimeError("vault opened read-only")
        if actor is None:
            if self._actor is None:
                self._actor = actor_of(self.config)
            actor = self._actor
        entry = self.ledger.append(kind, item=item, data=data, actor=actor, time=time)
        self._pending.append(entry)
        return entry

    @property
    def pending(self) -> int:
        return len(self._pending)

    def commit(self) -> None:
        if not self._pending:
            return
        with _full("the blob store", self.store.backend.name):
            self.store.flush()
        with _full("the ledger", self.ledger.path):
            self.ledger.commit()
        entries, self._pending = self._pending, []
        with _full("the catalog", self.catalog.path):  # behind: the next open catches up
            self.catalog.apply(entries)
        if self._indexer is not None:
            due = not self._bulk and _time.monotonic() >= self._index_due
            with _full("the search index", self._indexer.path):
                self._indexer.apply(entries, self.store.get, self.catalog, commit=due)
                if self._bulk and self._indexer.uncommitted >= self.config["import"]["index_commit_docs"]:
                    self._indexer.flush(wait=False)  # what a crash would make the next open redo: bounded
            if due:
                self._index_due = _time.monotonic() + self.index_commit_interval
        if self.witnesses:
            self.witnesses.after_commit(self.ledger)
