"""The broker's committer: the one writer of the vault during live ingest.

Workers do the parallel work (fetch, parse, hash, compress, upload blobs) and hand back
ledger entry specs; the committer trusts none of them: each job's result is checked against
the job's own event (vault/ingest/broker/validate.py: only the kinds that event causes, for
what it names, with the event's time and user), and a result that fails is refused whole,
reported back as a dead letter with the reason. The rest it appends, commits (ledger
checkpoint, then catalog) in batches, and only then reports the jobs done. Exactly once: every
entry of a job carries ``"event": <job id>``, and a job whose id the catalog already knows
(committed before a crash lost the DONE mark) is skipped; and, whatever the job, a message
the archive already has is never archived again (``_archived_once``: by its item id). A commit that fails (disk full, S3
down) leaves the ledger as it was: the vault is reopened (recovery cuts the unsigned tail) and
the batch's jobs go back to the queue.

Live entries are never holds, sweeps or other administrative entries (the check refuses
them), so nothing follows a live commit; the vault service's own operations run with this
writer through :meth:`Committer.call` and do their own follow-up.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import zmq

from vault.archive import Vault
from vault.entries import CONTENT_KINDS, EntrySpec, Kind
from vault.ingest.broker.validate import Invalid, ResultCheck

log = logging.getLogger(__name__)

COMMITTED, UNCOMMITTED, REJECTED = b"COMMITTED", b"UNCOMMITTED", b"REJECTED"


def _discovered_once(entries: list[EntrySpec], created: set[str], catalog) -> list[EntrySpec]:
    """New messages of one mailbox are handled side by side (jobs.COMMUTING), so two of them
    may both discover a folder the archive did not know: the folder is created once; the
    later discovery's folder.created and the folder state that came with it are dropped."""
    again = {
        e.item
        for e in entries
        if e.kind == Kind.FOLDER_CREATED and (e.item in created or catalog.folder(e.item) is not None)
    }
    # (a folder.created always names its folder: the item is its mailboxID)
    created.update(e.item for e in entries if e.kind == Kind.FOLDER_CREATED and e.item is not None)
    if not again:
        return entries
    return [e for e in entries if not (e.item in again and e.kind in _FOLDER_DISCOVERY)]


_FOLDER_DISCOVERY = {Kind.FOLDER_CREATED, Kind.FOLDER_ACL, Kind.FOLDER_METADATA}


def _archived_once(entries: list[EntrySpec], made: set[str], catalog) -> list[EntrySpec]:
    """Exactly once by the message, not only by the job: an entry that puts content into an
    item (message.appended, .copied, .moved: the item is mailboxID:UIDVALIDITY:UID, which
    Cyrus never gives two messages) is dropped when the archive, or this batch, already has
    that item. Two jobs can name one message: a reconciliation (on this thread, or the sync
    log's) archived a delivery whose event was with a worker at that moment, or the same
    event came again in other bytes (so under another job id)."""
    kept = []
    for e in entries:
        if e.kind in CONTENT_KINDS and e.item is not None:
            if e.item in made or catalog.item(e.item) is not None:
                log.info("%s of %s: the archive has it already; not recorded again", e.kind, e.item)
                continue
            made.add(e.item)
        kept.append(e)
    return kept


class _Call:
    """Work for the writer from another thread (the vault service): ``fn(vault)`` is run on the
    committer's thread between batches, its result or exception handed back through ``future``."""

    def __init__(self, fn: Callable[[Vault], Any]):
        self.fn = fn
        self.future: Future = Future()


class Committer:
    """Runs on its own thread; reports to the broker loop over an inproc PAIR socket:
    ``[REJECTED, json({job id: reason})]`` for results the check refused, then
    ``[COMMITTED, json(job ids)]`` or ``[UNCOMMITTED, json(job ids), reason]``."""

    def __init__(
        self,
        config,
        report_address: str,
        *,
        batch_max: int = 500,
        batch_delay: float = 0.005,
        prompt_delay: float | None = None,
        index_interval: float = 0.0,
        context: zmq.Context | None = None,
    ):
        self.config = config
        self.report_address = report_address
        self.batch_max = batch_max
        self.batch_delay = batch_delay
        # a batch holding a result another job waits for (or a call) is committed this soon
        self.prompt_delay = batch_delay if prompt_delay is None else min(prompt_delay, batch_delay)
        self.index_interval = index_interval  # search-index commits at most this often (seconds)
        self._context = context or zmq.Context.instance()
        self._queue: queue.Queue = queue.Queue()
        # set for what must not wait out batch_delay (a prompt result, a call, stop, a full
        # batch): while a batch gathers, the thread sleeps on this, not on every result
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._open_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self.vault: Vault | None = None
        self.committed_jobs = 0
        self.skipped_jobs = 0
        self.rejected_jobs = 0
        self.commits = 0
        self._check = ResultCheck()
        self._directory: Any = None  # vault.directory.Directory, with [ldap] url

    def start(self) -> None:
        """Open the vault as its writer (raises VaultBusy if someone else holds it)."""
        self._thread.start()
        self._opened.wait()
        if self._open_error is not None:
            raise self._open_error

    def submit(self, job_id: str, raw: bytes, entries: list[EntrySpec], prompt: bool = False) -> None:
        """A worker's result (``entries``) for the job whose event is ``raw``; ``prompt``:
        another job waits for this one's commit (jobs.JobStore.waited_on), so its batch is
        committed within ``prompt_delay`` rather than ``batch_delay``."""
        self._queue.put((job_id, raw, entries, prompt))
        if prompt or self._queue.qsize() >= self.batch_max:
            self._wake.set()

    def call(self, fn: Callable[[Vault], Any]) -> Any:
        """Run ``fn(vault)`` with the vault's writer, on the committer's thread, and return what it
        returns (or raise what it raised). Live commits wait meanwhile; events keep arriving
        and stay durable in the job store."""
        if self._stop.is_set() or not self._thread.is_alive():
            raise RuntimeError("the vault's writer is not running")
        work = _Call(fn)
        self._queue.put(work)
        self._wake.set()
        return work.future.result()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what was submitted, then close the vault."""
        self._stop.set()
        self._queue.put(None)
        self._wake.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self.vault = Vault.open(self.config, writer=True)
            self.vault.index_commit_interval = self.index_interval
        except Exception as e:  # VaultBusy, a broken ledger: the broker must not start
            self._open_error = e
            self._opened.set()
            return
        self._opened.set()
        self._open_directory()
        report = self._context.socket(zmq.PAIR)
        report.connect(self.report_address)
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    break
                jobs = [item[:3] for item in batch if not isinstance(item, _Call)]
                if jobs:
                    for frames in self._commit(jobs):
                        report.send_multipart(frames)
                for item in batch:
                    if isinstance(item, _Call):
                        self._run_call(item)
        finally:
            report.close(linger=1000)
            if self.vault is not None:
                self.vault.close()
            if self._directory is not None:
                self._directory.close()
            self._refuse_waiting_calls()

    def _open_directory(self) -> None:
        """The directory the workers resolve users with, for checking their actors (its
        cache is SQLite: opened on this thread)."""
        if not self.config["ldap"]["url"]:
            return
        from vault.directory import Directory

        directory = Directory.from_config(self.config)
        self._directory = directory
        self._check = ResultCheck(lambda login: directory.resolve(login).id)

    def _next_batch(self) -> list | None:
        """Wait for work, then gather what else arrives within ``batch_delay`` (a burst of
        deliveries becomes one ledger commit, one checkpoint signature: a commit costs about
        2 ms of CPU however few entries it holds), or within ``prompt_delay`` of a result
        another job waits for, or of a call. While no work comes, the search index's deferred
        commit is made."""
        while True:
            try:
                first = self._queue.get(timeout=self.index_interval or None)
                break
            except queue.Empty:
                self._flush_index()
        if first is None:
            return None
        self._wake.clear()  # (what set it is queued, or is this first item)
        batch = [first]
        deadline = time.monotonic() + (self.prompt_delay if self._prompt(first) else self.batch_delay)
        while True:
            while len(batch) < self.batch_max:  # what has come meanwhile
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    return batch
                batch.append(item)
                if self._prompt(item):
                    deadline = min(deadline, time.monotonic() + self.prompt_delay)
            left = deadline - time.monotonic()
            if len(batch) >= self.batch_max or left <= 0:
                return batch
            # (a wake set between the wait and the clear is for an item already queued: the
            # drain above takes it)
            self._wake.wait(left)
            self._wake.clear()

    @staticmethod
    def _prompt(item) -> bool:
        return isinstance(item, _Call) or bool(item[3])

    def _refuse_waiting_calls(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call):
                item.future.set_exception(RuntimeError("the vault's writer stopped"))

    def _run_call(self, work: _Call) -> None:
        vault = self.vault
        if vault is None:
            work.future.set_exception(RuntimeError("the vault is not open"))
            return
        try:
            result = work.fn(vault)
            # what a caller wrote is searchable when its answer arrives (live commits may defer)
            vault.flush_index()
            work.future.set_result(result)
        except BaseException as e:
            # whatever it recorded and did not commit is cut by reopening (recovery)
            self._reopen(vault)
            work.future.set_exception(e)

    def _flush_index(self) -> None:
        try:
            if self.vault is not None:
                self.vault.flush_index()
        except Exception as e:  # the index follows the ledger: the next open catches up
            log.error("search index commit failed: %s", e)

    def _commit(self, batch: list[tuple[str, bytes, list[EntrySpec]]]) -> list[list[bytes]]:
        """Check, record and commit a batch of results: the reports for the broker loop."""
        vault = self.vault
        if vault is None:
            every = [job_id for job_id, _, _ in batch]
            return [[UNCOMMITTED, json.dumps(every).encode(), b"the vault is not open"]]
        rejected: dict[str, str] = {}  # job id -> why its result was refused
        ids: list[str] = []

        def reports(outcome: list[bytes]) -> list[list[bytes]]:
            self.rejected_jobs += len(rejected)
            return [[REJECTED, json.dumps(rejected).encode()], outcome] if rejected else [outcome]

        try:
            seen: set[str] = set()
            created: set[str] = set()
            made: set[str] = set()  # items this batch put content into
            for job_id, raw, entries in batch:
                if job_id in seen or vault.catalog.has_event(job_id):
                    self.skipped_jobs += 1
                    ids.append(job_id)
                    continue
                try:
                    checked = self._check(job_id, raw, entries, vault.catalog)
                except Invalid as e:
                    rejected[job_id] = str(e)
                    continue
                except Exception as e:  # whatever a worker sent must not stall the batch
                    log.error("checking job %s: %s", job_id[:12], traceback.format_exc())
                    rejected[job_id] = f"its result could not be checked: {type(e).__name__}: {e}"
                    continue
                seen.add(job_id)
                ids.append(job_id)
                once = _archived_once(_discovered_once(checked, created, vault.catalog), made, vault.catalog)
                for spec in once:
                    vault.record(spec.kind, item=spec.item, data=spec.data, time=spec.time, actor=spec.actor)
            vault.commit()
        except Exception as e:
            log.error("commit of %d job(s) failed: %s", len(ids), e)
            self._reopen(vault)
            return reports([UNCOMMITTED, json.dumps(ids).encode(), f"commit failed: {e}".encode()])
        self.commits += 1
        self.committed_jobs += len(ids)
        return reports([COMMITTED, json.dumps(ids).encode()])

    def _reopen(self, vault: Vault) -> None:
        """Throw away what this batch appended to ``vault`` (the open one): recovery cuts the
        ledger's unsigned tail."""
        self.vault = None
        try:
            vault.abandon()
            vault.close()
        except Exception as e:
            log.warning("closing the vault after a failed commit: %s", e)
        while not self._stop.is_set():
            try:
                self.vault = Vault.open(self.config, writer=True)
                return
            except Exception as e:
                log.error("cannot reopen the vault: %s; retrying", e)
                time.sleep(1.0)
