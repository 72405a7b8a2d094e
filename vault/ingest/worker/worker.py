"""A worker: takes jobs from the broker, runs the event's handler, hands back ledger entries.

The worker does the parallel part of ingest: it asks the collector for payloads and folder
state, hashes, compresses and stores blobs (its own ContentStore on the shared backend), and
reads the catalog (SQLite WAL: readers never block the committer). Blobs are flushed before
the DONE that references them leaves, and several jobs share one flush (one pack) when they
arrive close together. Outcomes (protocol.py): DONE with the entries; FAILED with the reason
for an event that cannot be processed (malformed, unknown type, mailbox unknown to the
server, spool file gone, or a handler bug: kept in the dead-letter list, retried by
``vaultctl retry``); POSTPONE for what may work later (collector down, store unwritable).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass

import zmq

from vault.curve.guard import client_curve, secure
from vault.entries import EntrySpec
from vault.ingest import protocol as p
from vault.ingest.collector.client import CollectorClient
from vault.ingest.context import HandlerContext, Postpone, Quarantine
from vault.ingest.worker.handlers import handle
from vault.store.backends.base import StoreError
from vault.store.cas import ContentStore
from vault.store.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    postponed: int = 0
    flushes: int = 0


def _open_directory(config):
    if not config["ldap"]["url"]:
        return None
    from vault.directory import Directory

    return Directory.from_config(config)


class Worker:
    def __init__(self, config, *, name: str | None = None, context: zmq.Context | None = None):
        section = config["worker"]
        self.config = config
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}").encode()
        self.heartbeat_interval = float(section["heartbeat_interval_seconds"])
        self.flush_delay = float(section["flush_delay_ms"]) / 1000
        self.flush_max = int(section["flush_max_jobs"])
        self.job_wait = float(section["job_wait_seconds"])
        self.prefetch = max(1, min(p.MAX_SLOTS, int(section["prefetch_jobs"])))
        self.context = context or zmq.Context.instance()
        broker = config["broker"]
        self.curves = {  # vault/curve/: the worker's key, the broker's public key
            address: client_curve(
                config, section="broker", endpoint=address, component="worker", server="broker"
            )
            for address in (broker["control_address"], broker["worker_address"])
        }
        self.store = ContentStore.from_config(config)
        self.catalog = Catalog.from_config(config)
        self.collector = CollectorClient.from_config(config)
        self.directory = _open_directory(config)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._unflushed: list[tuple[str, list[EntrySpec]]] = []
        self._oldest_unflushed = 0.0
        self._flush_now = False  # a job the next of its mailbox waits for is unflushed
        self._idle = True

    def stop(self) -> None:
        self._stop.set()

    def _connect(self, address: str, identity: bytes) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.setsockopt(zmq.ROUTING_ID, identity)
        secure(sock, self.curves.get(address)).connect(address)
        return sock

    # ------------------------------------------------------------ the loop

    def run(self, ready: threading.Event | None = None) -> None:
        broker = self.config["broker"]
        self.control = self._connect(broker["control_address"], self.name)
        self.work = self._connect(broker["worker_address"], self.name)
        heartbeat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
        heartbeat.start()
        try:
            for _ in range(self.prefetch):
                self.control.send_multipart([p.READY])
            if ready is not None:
                ready.set()
            while not self._stop.is_set():
                timeout = 500
                if self._unflushed:
                    timeout = max(
                        0, int((self._oldest_unflushed + self.flush_delay - time.monotonic()) * 1000)
                    )
                if self.control.poll(timeout):
                    frames = self.control.recv_multipart()
                    if len(frames) in (2, 3) and frames[0] == p.TAKE:
                        self._take(frames[1], frames[2] if len(frames) == 3 else None)
                        if len(self._unflushed) < self.flush_max and not self._flush_now:
                            continue  # more may be coming: one flush for all of them
                if self._unflushed:
                    self._flush()
        finally:
            if self._unflushed:
                self._flush()
            self._stop.set()
            heartbeat.join(2)
            self.control.close()
            self.work.close()
            self.collector.close()
            self.catalog.close()
            self.store.close()

    def _heartbeats(self) -> None:
        sock = self._connect(self.config["broker"]["control_address"], self.name + p.HEARTBEAT_SUFFIX)
        try:
            while not self._stop.wait(self.heartbeat_interval):
                idle = self._idle and not self._unflushed
                sock.send_multipart([p.HEARTBEAT, b"1" if idle else b"0", str(self.prefetch).encode()])
        finally:
            sock.close(0)

    def _take(self, job_id: bytes, raw: bytes | None) -> None:
        """Process a job: its payload came with the TAKE, or (a TAKE of two frames) is
        fetched from the worker router."""
        self._idle = False
        try:
            if raw is None:
                raw = self._fetch(job_id)
            if raw is not None:
                self._process(job_id.decode(), raw)
        finally:
            self._idle = True
            self.control.send_multipart([p.READY])

    def _fetch(self, job_id: bytes) -> bytes | None:
        self.work.send_multipart([p.GET, job_id])
        if not self.work.poll(int(self.job_wait * 1000)):
            log.warning("job %s: no payload from the broker within %.0f s", job_id[:12], self.job_wait)
            return None
        frames = self.work.recv_multipart()
        if len(frames) == 3 and frames[0] == p.JOB and frames[1] == job_id:
            return frames[2]
        return None

    # ------------------------------------------------------------ one job

    def _process(self, job_id: str, raw: bytes) -> None:
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            return self._send(p.FAILED, job_id, f"malformed event JSON: {e}")
        ctx = HandlerContext(
            catalog=self.catalog,
            store=self.store,
            collector=self.collector,
            directory=self.directory,
            event_id=job_id,
            config=self.config,
        )
        try:
            entries = handle(event, ctx)
        except Quarantine as e:
            return self._send(p.FAILED, job_id, str(e))
        except Postpone as e:
            return self._send(p.POSTPONE, job_id, str(e))
        except StoreError as e:
            return self._send(p.POSTPONE, job_id, f"store: {e}")
        except Exception as e:  # a handler bug must not kill the worker; the event is kept
            log.error("job %s: %s", job_id[:12], traceback.format_exc())
            return self._send(p.FAILED, job_id, f"handler error: {type(e).__name__}: {e}")
        if not self._unflushed:
            self._oldest_unflushed = time.monotonic()
        self._unflushed.append((job_id, entries))
        if event.get("event") not in p.COMMUTING:
            # the next job of its mailbox waits for this one's commit (protocol.COMMUTING): no
            # batching delay (new messages, which commute, are what fills a pack)
            self._flush_now = True

    def _flush(self) -> None:
        """Make the blobs durable, then report the jobs that reference them."""
        done = self._unflushed
        self._flush_now = False
        self._idle = False  # holding these jobs until their DONE leaves
        try:
            self.store.flush()
        except StoreError as e:
            self._unflushed, self._idle = [], True
            self.store.discard()
            for job_id, _ in done:
                self._send(p.POSTPONE, job_id, f"store: {e}")
            return
        self.stats.flushes += 1
        for job_id, entries in done:
            self.control.send_multipart([p.DONE, job_id.encode(), p.encode_result(entries)])
            self.stats.done += 1
        self._unflushed, self._idle = [], True

    def _send(self, verb: bytes, job_id: str, reason: str) -> None:
        if verb == p.FAILED:
            self.stats.failed += 1
            log.warning("job %s failed: %s", job_id[:12], reason)
        else:
            self.stats.postponed += 1
        self.control.send_multipart([verb, job_id.encode(), reason.encode("utf-8", "replace")])
