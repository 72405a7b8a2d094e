"""Ships spooled events to the broker and deletes each only after the broker's ACK.

Wire (vault/ingest/protocol.py), ZeroMQ DEALER -> the broker's dealer ROUTER, multipart::

    D->B  [b"EVENT", event_id, raw, origin]
    B->D  [b"ACK", event_id]        once the job row is committed; duplicates are acked again

Up to ``window`` events are in flight; one not acked within ``ack_timeout`` is sent again (the
broker may have restarted and lost what was on the wire). A dead or absent broker only means the
spool grows: nothing here ever waits on the broker while holding anything a listener needs, and
the shipper runs on its own thread. After a restart everything still in new/ is sent again.
Each scan also turns the external hook's log into spool files (hook_log.py) and settles files
a dead writer left in tmp/.

The listeners hand their events over from memory (:meth:`Shipper.offer`) as soon as they are in
the dealer's journal, before any spool file exists; their acks go back through ``on_acked`` so
that most events never need a file (listeners.JournaledSpool). Such an event is read from its
spool file only when its bytes were not kept (more than ``MEMORY_EVENTS`` waiting: a broker
that is away must not make us hold the whole backlog in memory); until that file exists the
shipper waits for it, so events still go out in arrival order.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq

from vault.curve.guard import ClientCurve, secure
from vault.ingest.dealer.hook_log import HookLog
from vault.ingest.dealer.spool import EventSpool, event_id

log = logging.getLogger(__name__)

LOCK_NAME = "shipper.lock"
MEMORY_EVENTS = 5000  # offered events whose bytes are kept in memory while they wait


class ShipperBusy(RuntimeError):
    """Another shipper already serves this spool."""


@dataclass
class _InFlight:
    raw: bytes
    names: list[str]
    sent_at: float = 0.0
    sends: int = 0


@dataclass
class ShipperStats:
    sent: int = 0
    resent: int = 0
    acked: int = 0
    duplicate_acks: int = 0
    bad_replies: int = 0
    promoted: int = 0
    quarantined: int = 0
    last_ack_at: float = 0.0
    extra: dict = field(default_factory=dict)


class Shipper:
    def __init__(
        self,
        spool: EventSpool,
        broker: str,
        *,
        origin: str | None = None,
        window: int = 100,
        ack_timeout: float = 5.0,
        scan_interval: float = 0.2,
        context: zmq.Context | None = None,
        curve: ClientCurve | None = None,
        gather: float = 0.0,
    ):
        self.spool = spool
        # after a wake, wait this long for more before sending: the events of a burst leave
        # together, and their acks come back together (one thread wake each, not per event)
        self.gather = gather
        self.broker = broker
        self.curve = curve  # None: plain, where the config allows it (vault/curve/guard.py)
        self.origin = (origin or socket.gethostname()).encode()
        self.window = window
        self.ack_timeout = ack_timeout
        self.scan_interval = scan_interval
        self.hook_log = HookLog(spool)
        self.stats = ShipperStats()
        self._context = context or zmq.Context.instance()
        self._backlog: deque[str] = deque()
        self._known: set[str] = set()  # in the backlog or in flight
        self._inflight: OrderedDict[str, _InFlight] = OrderedDict()  # event id -> sent, oldest first
        # (name, bytes) from offer(), (name, None) from wake(): one queue, so arrival order holds
        self._woken: deque[tuple[str, bytes | None]] = deque()
        self._memory: dict[
            str, bytes | None
        ] = {}  # offered names not acked yet -> bytes (None: read the file)
        self._raws_held = 0
        # names shipped from memory and acked (the listeners' JournaledSpool.acked)
        self.on_acked: Callable[[list[str]], None] | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> threading.Thread:
        self._take_lock()
        self._thread = threading.Thread(target=self._run_locked, name="shipper", daemon=True)
        self._thread.start()
        return self._thread

    def run(self) -> None:
        """Ship until :meth:`stop` (in the calling thread)."""
        self._take_lock()
        self._run_locked()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self, names: list[str] | None = None) -> None:
        """New files in new/ (thread-safe; called by the spool writer)."""
        if names:
            self._woken.extend((name, None) for name in names)
        self._poke()

    def offer(self, events: list[tuple[str, bytes]]) -> None:
        """Events (spool name, normalised bytes) durable elsewhere but not (yet) in new/; their
        acks go to ``on_acked`` (thread-safe; called by the listeners)."""
        self._woken.extend(events)
        self._poke()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already poked (buffer full) or closing

    def _take_lock(self) -> None:
        path = self.spool.root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ShipperBusy(
                f"another shipper is already shipping {self.spool.root} (lock {path})"
            ) from None
        self._lock_fd = fd

    # ------------------------------------------------------------------ loop
    def _run_locked(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Queue nothing for a broker that is not connected: unsent events stay in the spool.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, max(2 * self.window, 100))
        secure(sock, self.curve).connect(self.broker)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        next_scan = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._woken:
                    self._take_woken()
                if not self._backlog and now >= next_scan:
                    self._scan()
                    next_scan = now + self.scan_interval
                self._fill(sock)
                self._resend(sock, now)
                timeout = max(0.0, next_scan - time.monotonic()) if not self._backlog else self.scan_interval
                if self._inflight:
                    oldest = next(iter(self._inflight.values()))
                    timeout = min(timeout, max(0.0, oldest.sent_at + self.ack_timeout - time.monotonic()))
                for polled, _ in poller.poll(int(timeout * 1000 + 1)):  # ms (pyzmq truncates floats too)
                    if polled is sock:
                        self._drain_replies(sock)
                    else:
                        if self.gather:  # pokes meanwhile cost the poker a write, us no wake
                            self._stop.wait(self.gather)
                        self._drain_wake()
        finally:
            sock.close(0)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _take_woken(self) -> None:
        while self._woken:
            name, raw = self._woken.popleft()
            if name not in self._known:
                self._known.add(name)
                self._backlog.append(name)
                if raw is None:
                    continue  # a spool file
                if self._raws_held < MEMORY_EVENTS:
                    self._memory[name] = raw
                    self._raws_held += 1
                else:
                    self._memory[name] = None

    def _scan(self) -> None:
        for collect in (self.hook_log.collect, self.spool.promote):
            try:
                spooled, quarantined = collect()
            except OSError as e:  # a bad disk day must not stop shipping what is spooled
                log.error("collecting events in %s: %s", self.spool.root, e)
                continue
            self.stats.promoted += len(spooled)
            self.stats.quarantined += len(quarantined)
        for name in self.spool.pending():
            if name not in self._known:
                self._known.add(name)
                self._backlog.append(name)

    def _fill(self, sock: zmq.Socket) -> None:
        while self._backlog and len(self._inflight) < self.window:
            name = self._backlog[0]
            raw = self._memory.get(name, b"") if self._memory else b""
            if not raw:
                try:
                    raw = self.spool.read(name)
                except FileNotFoundError:
                    if name in self._memory:
                        return  # offered, its spool file not written yet: wait for it (order)
                    self._backlog.popleft()
                    self._known.discard(name)
                    continue
            eid = event_id(raw)
            entry = self._inflight.get(eid)
            if entry is not None:  # same bytes spooled twice: one send, both files go on its ACK
                entry.names.append(name)
                self._backlog.popleft()
                continue
            entry = _InFlight(raw, [name])
            if not self._send(sock, eid, entry):
                return  # no broker connected: try again later
            self._backlog.popleft()
            self._inflight[eid] = entry
            self.stats.sent += 1

    def _send(self, sock: zmq.Socket, eid: str, entry: _InFlight) -> bool:
        try:
            sock.send_multipart(
                [b"EVENT", eid.encode(), entry.raw, self.origin], flags=zmq.NOBLOCK, copy=False
            )
        except zmq.Again:
            return False
        entry.sent_at = time.monotonic()
        entry.sends += 1
        return True

    def _resend(self, sock: zmq.Socket, now: float) -> None:
        while self._inflight:
            eid, entry = next(iter(self._inflight.items()))
            if entry.sent_at + self.ack_timeout > now:
                return
            if not self._send(sock, eid, entry):
                return
            self._inflight.move_to_end(eid)
            self.stats.resent += 1

    def _acked_offered(self, names: list[str]) -> None:
        if self.on_acked is None:
            for name in names:
                self.spool.remove(name)
            return
        try:
            self.on_acked(names)
        except Exception:  # at worst a spool file stays and is shipped again (deduplicated)
            log.exception("on_acked callback failed")

    def _drain_replies(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2 or frames[0] != b"ACK":
                self.stats.bad_replies += 1
                log.warning(
                    "broker %s sent an unexpected reply %r", self.broker, [f[:40] for f in frames[:3]]
                )
                continue
            entry = self._inflight.pop(frames[1].decode("ascii", "replace"), None)
            if entry is None:
                self.stats.duplicate_acks += 1  # the ACK of a resend we had already settled
                continue
            offered = []
            for name in entry.names:
                self._known.discard(name)
                if name in self._memory:
                    if self._memory.pop(name) is not None:
                        self._raws_held -= 1
                    offered.append(name)
                else:
                    self.spool.remove(name)
            if offered:
                self._acked_offered(offered)
            self.stats.acked += 1
            self.stats.last_ack_at = time.time()
