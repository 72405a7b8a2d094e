"""The broker: events in from dealers, jobs out to workers, results into the committer.

Three ZeroMQ ROUTER sockets (frames in vault/ingest/protocol.py): the dealer router persists
each event as a job before it acks (a SIGKILLed broker loses nothing the dealer let go of);
the control router hears workers' READY, heartbeats and job outcomes and sends TAKE with
the job's payload; the worker router hands a payload out again to a worker that asks (GET). Jobs of one mailbox go out one at a time, in arrival
order (JobStore.dispatchable). A worker silent for ``worker_timeout`` is dropped and its
jobs go back to PENDING. Results go to the committer thread; jobs become DONE only once
their entries are committed.

The dealer router takes events only (vault/ingest/broker/validate.py: an administrative
``vnd.vault.*`` request, or an id that is not its event's hash, is stored as a dead letter
no worker sees). A worker answers only the job it was given and still holds, from its own
control socket (never its heartbeat socket); its result is checked by the committer.

Every router runs CURVE (vault/curve/): the dealer port lets in the keys on the ``dealers``
allow-list, the control and work ports those on ``workers``; a message from a key revoked
since its connection opened is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import zmq

from vault.curve.guard import ServerCurve, recv_allowed, secure, server_curve
from vault.ingest import protocol as p
from vault.ingest.broker.committer import COMMITTED, REJECTED, UNCOMMITTED, Committer
from vault.ingest.broker.jobs import BUSY, Job, JobStore
from vault.ingest.broker.validate import refusal

log = logging.getLogger(__name__)

DRAIN = 1000  # messages read from one socket before the others get a turn


@dataclass
class WorkerState:
    name: bytes
    last_seen: float
    credits: int = 0
    taken: set[str] = field(default_factory=set)


@dataclass
class BrokerStats:
    events: int = 0
    duplicates: int = 0
    dispatched: int = 0
    done: int = 0
    failed: int = 0
    refused: int = 0  # on the event wire: administrative requests, made-up ids
    rejected: int = 0  # workers' results the committer's check refused
    postponed: int = 0
    released: int = 0
    workers_lost: int = 0
    commit_failures: int = 0


def _round_robin(workers: list[WorkerState]):
    """Each worker once per turn while it has credits left."""
    left = {id(w): w.credits for w in workers}
    while any(left.values()):
        for w in workers:
            if left[id(w)] > 0:
                left[id(w)] -= 1
                yield w


class Broker:
    def __init__(self, config, *, context: zmq.Context | None = None):
        section = config["broker"]
        self.config = config
        self.dealer_bind = section["dealer_bind"]
        self.worker_bind = section["worker_bind"]
        self.control_bind = section["control_bind"]
        self.worker_timeout = float(section["worker_timeout_seconds"])
        self.postpone_delay = float(section["postpone_seconds"])
        self.max_postpones = int(section["max_postpones"])
        self.keep_done = float(section["keep_done_hours"]) * 3600
        # events are stored (one synchronous=FULL transaction: an fsync on the disk the mail
        # server may share) and acked in groups gathered this long
        self.event_gather = float(section["event_gather_ms"]) / 1000
        self._arriving: list[tuple[bytes, str, tuple[str, bytes, str]]] = []  # (peer, claim, event)
        self._arriving_since = 0.0
        # an idle worker's job older than this was never received (3 heartbeats: no race)
        self.lost_take_after = 3 * float(config["worker"]["heartbeat_interval_seconds"])
        self.context = context or zmq.Context.instance()
        # CURVE on each router (vault/curve/): dealers' keys on the dealer port, workers' on the
        # control and work ports; refused here, before anything opens, when it can be neither
        self.curves: dict[str, ServerCurve | None] = {
            bind: server_curve(config, section="broker", endpoint=bind, domain=domain, component="broker")
            for bind, domain in (
                (self.dealer_bind, "dealers"),
                (self.control_bind, "workers"),
                (self.worker_bind, "workers"),
            )
        }
        self.jobs = JobStore.from_config(config)
        self.committer = Committer(
            config,
            f"inproc://committer-{uuid.uuid4().hex}",
            batch_max=int(section["commit_batch"]),
            batch_delay=float(section["commit_delay_ms"]) / 1000,
            prompt_delay=float(section["commit_prompt_ms"]) / 1000,
            index_interval=float(section["index_commit_ms"]) / 1000,
            context=self.context,
        )
        self.workers: dict[bytes, WorkerState] = {}
        self.lost: dict[str, float] = {}  # workers dropped for silence and not back: name -> when
        # when an event last arrived (as it comes, not once its gathered batch is stored: the
        # sync log's follower waits for the events on their way, service/daemon.py)
        self.last_event_at: float | None = None
        self.stats = BrokerStats()
        self._stop = threading.Event()
        self._sockets: list[zmq.Socket] = []
        self._curve_of: dict[int, ServerCurve | None] = {}  # id(socket) -> its CURVE
        # Whether a job may have become dispatchable since the last look (new, released,
        # postponed, failed or committed jobs, time passing): a READY alone changes nothing
        # unless the last look found more jobs than there were credits (``_starved``).
        self._dispatch_due = True
        self._starved = False
        # jobs whose entries are with the committer (-> the worker that answered): no worker's
        # silence can take them back
        self._committing: dict[str, str] = {}
        self._next_housekeeping = 0.0
        self._next_forget = 0.0

    def stop(self) -> None:
        self._stop.set()

    def health(self) -> dict:
        """What ``vaultctl status`` shows of the live pipeline (read from another thread: a
        snapshot, consistent enough for a health check)."""
        now = time.monotonic()
        return {
            "workers": {
                w.name.decode(errors="replace"): round(now - w.last_seen, 1)
                for w in list(self.workers.values())
            },
            "lost_workers": dict(self.lost),
            "last_event_at": self.last_event_at,
            "stats": dict(self.stats.__dict__),
        }

    # ------------------------------------------------------------ lifecycle

    def _socket(self, kind: int, bind: str) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        self._curve_of[id(sock)] = self.curves.get(bind)
        if kind == zmq.ROUTER:
            # a message to a peer that is not connected (yet) raises instead of vanishing
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        secure(sock, self.curves.get(bind)).bind(bind)
        self._sockets.append(sock)
        return sock

    def run(self, ready: threading.Event | None = None) -> None:
        """Serve until :meth:`stop`. Raises VaultBusy when another process writes the vault."""
        recovered = self.jobs.recover()
        if recovered:
            log.info("%d job(s) were BUSY when the broker stopped: back to PENDING", recovered)
        report = self.report = self.context.socket(zmq.PAIR)
        report.bind(self.committer.report_address)
        self._sockets.append(report)
        try:
            self.committer.start()  # (VaultBusy: raised as it is, after the clean-up below)
            self.dealers = self._socket(zmq.ROUTER, self.dealer_bind)
            self.control = self._socket(zmq.ROUTER, self.control_bind)
            self.work = self._socket(zmq.ROUTER, self.worker_bind)
            poller = zmq.Poller()
            for sock in (self.dealers, self.control, self.work, self.report):
                poller.register(sock, zmq.POLLIN)
            if ready is not None:
                ready.set()
            log.info(
                "broker: dealers %s, workers %s, control %s",
                self.dealer_bind,
                self.worker_bind,
                self.control_bind,
            )
            while not self._stop.is_set():
                timeout = 100
                if self._arriving:
                    due = self._arriving_since + self.event_gather - time.monotonic()
                    timeout = max(0, min(timeout, int(due * 1000) + 1))
                events = dict(poller.poll(timeout))
                if self.report in events:
                    self._on_reports()
                if self.dealers in events:
                    self._on_dealers()
                self._store_events()
                if self.control in events:
                    self._on_control()
                if self.work in events:
                    self._on_work()
                self._housekeeping()
                self._dispatch()
        finally:
            self.committer.stop()
            # what the committer finished while stopping
            while self.report.poll(0):
                self._on_reports()
            for sock in self._sockets:
                sock.close(0)
            self.jobs.close()

    def _recv(self, sock: zmq.Socket) -> list[bytes]:
        """The next message (zmq.Again: none); an empty list from a client whose key was
        revoked since it connected (vault/curve/guard.py)."""
        return recv_allowed(sock, self._curve_of[id(sock)], zmq.NOBLOCK) or []

    @staticmethod
    def _send(sock: zmq.Socket, frames: list[bytes]) -> bool:
        try:
            sock.send_multipart(frames, flags=zmq.NOBLOCK)
            return True
        except zmq.ZMQError as e:  # EHOSTUNREACH: peer gone; EAGAIN: its queue is full
            log.info("cannot send %s to %r: %s", frames[1][:10], frames[0], e)
            return False

    # ------------------------------------------------------------ dealers

    def _on_dealers(self) -> None:
        """Take what the dealers sent; :meth:`_store_events` stores and acks it."""
        if not self._arriving:
            self._arriving_since = time.monotonic()
        for _ in range(DRAIN):
            try:
                frames = self._recv(self.dealers)
            except zmq.Again:
                break
            if not frames:
                continue  # a revoked client's
            peer, body = frames[0], frames[1:]
            if len(body) != 4 or body[0] != p.EVENT:
                log.warning("dealer %r sent a malformed message (%d frames): ignored", peer, len(body))
                continue
            try:
                eid, origin = body[1].decode("ascii"), body[3].decode("utf-8", "replace")
            except UnicodeDecodeError:
                log.warning("dealer %r sent a non-ASCII event id: ignored", peer)
                continue
            # the job's id is its bytes' hash, whatever the sender says (a made-up id would
            # shadow the real event that has it: the dedup key is the id)
            true_id = hashlib.sha256(body[2]).hexdigest()
            self._arriving.append((peer, eid, (true_id, body[2], origin)))
            self.last_event_at = time.time()

    def _store_events(self) -> None:
        """Once the first of them waited ``event_gather`` (or many came): store the events
        that arrived, in one transaction, durable before any of their acks leaves. (Events
        not stored when the broker stops are not acked: their dealers send them again.)"""
        if not self._arriving:
            return
        if len(self._arriving) < DRAIN and time.monotonic() - self._arriving_since < self.event_gather:
            return
        arriving, self._arriving = self._arriving, []
        peers = [peer for peer, _, _ in arriving]
        claims = [claim for _, claim, _ in arriving]  # the ids the senders gave
        batch = [event for _, _, event in arriving]
        refused: dict[int, str] = {}  # position in the batch -> why

        def refuse(n: int, name: str | None) -> str | None:
            reason = refusal(batch[n][0], claims[n], name)
            if reason:
                refused[n] = reason
            return reason

        new = self.jobs.add_many(batch, refuse=refuse)  # durable before any ack leaves
        for n, (peer, claim, (job_id, _, _), fresh) in enumerate(zip(peers, claims, batch, new)):
            # the ack names the id the dealer knows it by (a gone dealer resends)
            self._send(self.dealers, [peer, p.ACK, claim.encode()])
            if fresh and n in refused:
                log.warning("dealer %r: %s (job %s)", peer, refused[n], job_id[:12])
                self.stats.refused += 1
            elif fresh:
                self.stats.events += 1
            else:
                self.stats.duplicates += 1
        if self.jobs.added_pending:
            self._dispatch_due = True

    # ------------------------------------------------------------ workers

    def _worker(self, identity: bytes) -> WorkerState:
        name = p.worker_name(identity)
        state = self.workers.get(name)
        if state is None:
            state = self.workers[name] = WorkerState(name, time.monotonic())
            # a worker back, or a new one in a lost one's place (a restarted worker has a new name)
            if self.lost.pop(name.decode(errors="replace"), None) is None and self.lost:
                self.lost.pop(min(self.lost, key=self.lost.__getitem__))
            log.info("worker %s joined", name.decode(errors="replace"))
        state.last_seen = time.monotonic()
        return state

    def _on_control(self) -> None:
        for _ in range(DRAIN):
            try:
                frames = self._recv(self.control)
            except zmq.Again:
                return
            if not frames:
                continue  # a revoked client's
            identity, body = frames[0], frames[1:]
            if not body:
                continue
            if identity.endswith(p.HEARTBEAT_SUFFIX) and body[0] != p.HEARTBEAT:
                # a heartbeat socket only beats: an outcome from it would be anyone's
                log.warning("%r sent %r from a heartbeat socket: ignored", identity, body[0][:20])
                continue
            known = p.worker_name(identity) in self.workers
            worker = self._worker(identity)
            verb = body[0]
            if verb == p.READY:
                worker.credits += 1
                if self._starved:
                    self._dispatch_due = True
            elif verb == p.HEARTBEAT:
                if len(body) > 1 and body[1] == b"1":
                    slots = body[2] if len(body) > 2 and body[2].isdigit() else b"1"
                    self._idle_worker(worker, known, max(1, min(p.MAX_SLOTS, int(slots))))
            elif verb in (p.DONE, p.FAILED, p.POSTPONE) and len(body) >= 3:
                self._on_outcome(worker, verb, body[1].decode("ascii", "replace"), body[2])
            else:
                log.warning("worker %r sent %r: ignored", identity, verb[:20])

    def _idle_worker(self, worker: WorkerState, known: bool, slots: int = 1) -> None:
        """A worker says it holds nothing (and takes ``slots`` jobs ahead). If we think it
        holds jobs it took a while ago, the TAKE was lost (say, sent while it reconnected to a
        restarted broker): requeue them."""
        if not known:
            worker.credits = max(worker.credits, slots)  # we restarted while it waited
            self._dispatch_due = True
        if not worker.taken:
            return  # nothing of ours it could hold
        lost = self.jobs.release_worker(
            worker.name.decode(),
            "TAKE lost on the way to the worker",
            taken_before=time.time() - self.lost_take_after,
            keep=self._committing,
        )
        if lost:
            log.warning(
                "worker %s is idle but held %d job(s): requeued",
                worker.name.decode(errors="replace"),
                len(lost),
            )
            worker.taken.difference_update(lost)
            worker.credits = max(worker.credits, slots)
            self.stats.released += len(lost)
            self._dispatch_due = True

    def _owned(self, worker: WorkerState, job_id: str) -> Job | None:
        """The job, if this worker was given it and still holds it (not timed out and given
        to another, not answered already)."""
        if job_id in self._committing:
            return None  # its outcome is in already
        job = self.jobs.get(job_id)
        return job if job is not None and (job.state, job.worker) == (BUSY, worker.name.decode()) else None

    def _on_outcome(self, worker: WorkerState, verb: bytes, job_id: str, payload: bytes) -> None:
        worker.taken.discard(job_id)
        job = self._owned(worker, job_id)
        if job is None:
            log.info(
                "%s for job %s from %s, which does not hold it: ignored",
                verb.decode(),
                job_id[:12],
                worker.name,
            )
            return
        if verb == p.DONE:
            try:
                entries = p.decode_result(payload)
            except p.ProtocolError as e:
                self.jobs.fail(job_id, f"{e} (worker {worker.name.decode(errors='replace')})")
                self.stats.failed += 1
                return
            # BUSY until committed; no longer this worker's to lose (kept in memory: a broker
            # restart requeues every BUSY job anyway, and the committer skips what it has)
            self._committing[job_id] = worker.name.decode(errors="replace")
            self.committer.submit(job_id, job.raw, entries, prompt=self.jobs.waited_on(job_id))
        elif verb == p.FAILED:
            reason = payload.decode("utf-8", "replace")
            log.warning("job %s failed: %s", job_id[:12], reason)
            self.jobs.fail(job_id, reason)
            self.stats.failed += 1
            self._dispatch_due = True
        else:
            reason = payload.decode("utf-8", "replace")
            self.jobs.postpone(job_id, reason, self.postpone_delay, self.max_postpones)
            self.stats.postponed += 1
            self._dispatch_due = True

    def _on_work(self) -> None:
        for _ in range(DRAIN):
            try:
                frames = self._recv(self.work)
            except zmq.Again:
                return
            if not frames:
                continue  # a revoked client's
            identity, body = frames[0], frames[1:]
            if len(body) != 2 or body[0] != p.GET or identity.endswith(p.HEARTBEAT_SUFFIX):
                continue
            worker = self._worker(identity)
            job_id = body[1].decode("ascii", "replace")
            job = self.jobs.get(job_id) if job_id not in self._committing else None
            if job is not None and job.state == BUSY and job.worker == worker.name.decode():
                self._send(self.work, [identity, p.JOB, body[1], job.raw])
            else:
                worker.taken.discard(job_id)
                self._send(self.work, [identity, p.GONE, body[1]])

    def _dispatch(self) -> None:
        if not self._dispatch_due:
            return
        ready = [w for w in self.workers.values() if w.credits > 0]
        if not ready:
            return
        self._dispatch_due = False
        limit = sum(w.credits for w in ready)
        jobs = self.jobs.dispatchable(limit)
        self._starved = len(jobs) >= limit
        assignments = list(zip((j.id for j in jobs), _round_robin(ready)))
        raw = {j.id: j.raw for j in jobs}
        taken = set(self.jobs.take_many([(jid, w.name.decode()) for jid, w in assignments]))
        for job_id, worker in assignments:
            if job_id not in taken:
                continue
            if not self._send(self.control, [worker.name, p.TAKE, job_id.encode(), raw[job_id]]):
                self.jobs.release([job_id], "worker unreachable")
                worker.credits = 0
                self._dispatch_due = True  # for another worker
                continue
            worker.credits -= 1
            worker.taken.add(job_id)
            self.stats.dispatched += 1

    # ------------------------------------------------------------ committer

    def _on_reports(self) -> None:
        while True:
            try:
                frames = self.report.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            ids = json.loads(frames[1])
            if frames[0] == REJECTED:  # {job id: why}: the worker's result is a dead letter
                for job_id, reason in ids.items():
                    worker = self._committing.pop(job_id, "?")
                    log.warning(
                        "job %s: the result of worker %s was refused: %s", job_id[:12], worker, reason
                    )
                    self.jobs.fail(job_id, f"result of worker {worker} refused: {reason}")
                self.stats.rejected += len(ids)
                self._dispatch_due = True
                continue
            for job_id in ids:
                self._committing.pop(job_id, None)
            if frames[0] == COMMITTED:
                self.jobs.done(ids)
                self.stats.done += len(ids)
            elif frames[0] == UNCOMMITTED:
                reason = frames[2].decode("utf-8", "replace")
                self.jobs.release(ids, reason)
                self.stats.commit_failures += 1
            self._dispatch_due = True

    # ------------------------------------------------------------ timers

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + min(1.0, self.worker_timeout / 4)
        self._dispatch_due = True  # postponed jobs come due with time
        for name, worker in list(self.workers.items()):
            if now - worker.last_seen > self.worker_timeout:
                released = self.jobs.release_worker(
                    name.decode(), f"worker {name.decode()} went silent", keep=self._committing
                )
                log.warning(
                    "worker %s silent for %.0f s: dropped, %d job(s) back to PENDING",
                    name.decode(errors="replace"),
                    now - worker.last_seen,
                    len(released),
                )
                del self.workers[name]
                self.lost[name.decode(errors="replace")] = time.time()
                self.stats.workers_lost += 1
                self.stats.released += len(released)
        if now >= self._next_forget:
            self._next_forget = now + 3600
            self.jobs.forget_done(time.time() - self.keep_done)
