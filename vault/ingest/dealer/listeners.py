"""The dealer daemon's listeners: Cyrus's notify socket in datagram or dlist-stream form.

Cyrus waits on us: in stream mode lmtpd/imapd block on each frame until we answer, with no
timeout; in datagram mode the socket queues only ~10 datagrams before senders stall. Both
listeners make events durable through :class:`JournaledSpool` (one journal write + fdatasync
per batch, see vault/ingest/journal.py); the shipper gets them from memory right away, and only
those the broker has not acked within a grace period become spool files, in the background.

- :class:`StreamListener` commits the frames completed in one turn of the asyncio loop right
  there, then answers ``OK NIL``: latency is what Cyrus pays, so no threads on that path.
- :class:`DatagramListener` only decodes and hands over to a :class:`SpoolWriter` thread, so
  the loop keeps draining the socket while the disk works.

Bytes that are not an event (garbage, truncated datagrams, frames cut off) go to the spool's
quarantine with the reason; a stream peer is told ``NO "<reason>"``. Events the vault records
nothing for (``spool.DROPPED_EVENTS``: Cyrus's MailboxModseq, one per delivery) are counted and
dropped on arrival; a stream peer is answered ``OK NIL`` at once, without waiting for a commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from vault.ingest.cyrus.notify import OK_REPLY, DlistFrameParser, WireError, decode_datagram
from vault.ingest.dealer.journal import Journal, JournalError, JournalFull
from vault.ingest.dealer.spool import EventSpool, EventSpoolError, dropped, normalise

log = logging.getLogger(__name__)

# Cyrus caps a datagram at 64 KiB; anything longer than this buffer is reported as truncated.
DATAGRAM_BUFFER = 256 * 1024
# Past this many unwritten events the datagram listener stops reading until the writer catches
# up (the kernel queue then pushes back on Cyrus instead of our memory growing without bound).
WRITER_HIGH_WATER = 20000
# How long the datagram listener's writer gathers events before one commit (SpoolWriter): at
# Cyrus's pace (a few hundred a second) a batch of several, for at most this much more time in
# memory only (a datagram in the kernel's queue is no safer).
SOCKET_GATHER = 0.02
SOCKET_MODE = 0o660


def _notify(on_written: Callable[[list[str]], None] | None, names: list[str]) -> None:
    if on_written is not None and names:
        try:
            on_written(names)
        except Exception:  # a shipper problem must not stop the spooling
            log.exception("on_written callback failed")


class SpoolWriter:
    """Commits submitted events on its own thread, in batches (for the datagram listener,
    which must keep draining Cyrus's short socket queue while the disk works).

    Nobody waits for a datagram's commit (Cyrus has gone on as soon as it sent it), so after
    the first event of a batch the writer waits ``gather`` seconds for more: one journal write
    and fdatasync, one hand-over to the shipper and one wake of each thread for all of them,
    instead of per event at Cyrus's pace (``SOCKET_GATHER``)."""

    def __init__(
        self,
        spool: EventSpool,
        commit: Callable[[list[bytes]], None],
        max_batch: int = 512,
        gather: float = 0.0,
    ):
        self.spool = spool  # for quarantine
        self.commit = commit
        self.max_batch = max_batch
        self.gather = gather
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._backlog = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._backlog

    def submit(self, raw: bytes) -> Future:
        """Future resolved once the event is durable."""
        return self._put(raw, None)

    def submit_bad(self, raw: bytes, reason: str) -> Future:
        return self._put(raw, reason)

    def _put(self, raw: bytes, reason: str | None) -> Future:
        future: Future = Future()
        with self._lock:
            self._backlog += 1
        self._queue.put((raw, reason, future))
        return future

    def close(self) -> None:
        """Commit everything submitted so far, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if self.gather and batch[0] is not None:
                time.sleep(self.gather)  # the loop keeps receiving meanwhile
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
                batch = [item for item in batch if item is not None]
            self._write(batch)
            with self._lock:
                self._backlog -= len(batch)

    def _write(self, batch) -> None:
        good = [(raw, fut) for raw, reason, fut in batch if reason is None]
        for raw, reason, fut in batch:
            if reason is not None:
                log.warning("quarantined %d bytes in %s: %s", len(raw), self.spool.bad, reason)
                self._settle(fut, lambda raw=raw, reason=reason: self.spool.quarantine(raw, reason))
        if good:
            self._settle_all([fut for _, fut in good], lambda: self.commit([raw for raw, _ in good]))

    @staticmethod
    def _settle(fut: Future, work) -> None:
        SpoolWriter._settle_all([fut], work)

    @staticmethod
    def _settle_all(futures: list[Future], work) -> None:
        try:
            result = work()
        except OSError as e:
            log.error("%s", e)
            for fut in futures:
                fut.set_exception(e)
        else:
            for fut in futures:
                fut.set_result(result)


class JournaledSpool:
    """The listeners' durable commit: the journal first (one fdatasync, in the caller's thread),
    spool files afterwards on a thread of its own, fsynced in batches, after which the journal's
    checkpoint moves on (see vault/ingest/journal.py for why).

    With ``ship`` (the shipper's :meth:`~vault.ingest.dealer.shipper.Shipper.offer`), committed events
    go to the shipper straight from memory, and the journal is their spool meanwhile: an event
    the broker acks within ``grace`` seconds never becomes a spool file at all (no create,
    write, rename, fsync, read back and unlink per event, all of which compete with Cyrus for
    the disk and the CPU). Whatever is not acked by then is written to new/ as before, and the
    checkpoint never passes an event that is neither acked nor durable in new/, so a crash
    replays it from the journal. The shipper reports acks through :meth:`acked`."""

    def __init__(
        self,
        spool: EventSpool,
        journal: Journal,
        on_written: Callable[[list[str]], None] | None = None,
        checkpoint_interval: float = 0.2,
        ship: Callable[[list[tuple[str, bytes]]], None] | None = None,
        grace: float = 0.5,
    ):
        self.spool = spool
        self.journal = journal
        self.on_written = on_written
        self.checkpoint_interval = checkpoint_interval
        self.ship = ship
        self.grace = grace if ship is not None else 0.0
        self.files_written = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # The materialiser is woken by a commit only when it has nothing to wait for; otherwise
        # it takes what was committed at its next tick (every checkpoint_interval): no thread
        # switch per commit on the path Cyrus waits on. sync_now() and close() always wake it.
        self._wake = threading.Event()
        self._idle = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._acked: set[str] = set()  # shipped from memory and acked before being settled here
        self._filed: set[str] = set()  # shipped from memory, written to new/, not acked yet

    def recover(self) -> int:
        """Spool whatever the journal holds past its checkpoint (before serving)."""
        payloads = self.journal.recover()
        if payloads:
            self._written(self.spool.write_many(payloads))
        self.journal.checkpoint(self.journal.seq, self.journal.pos)
        return len(payloads)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-materializer", daemon=True)
        self._thread.start()

    def commit(self, raws: list[bytes]) -> None:
        """Return once ``raws`` are durable; raises EventSpoolError/JournalError if they cannot be."""
        names = [self.spool.new_name() for _ in raws]  # arrival order, whenever they are written
        if max(map(len, raws)) <= self.journal.max_record:
            try:
                mark = self.journal.append(raws)[-1]
            except JournalFull:
                self.sync_now()
                try:
                    mark = self.journal.append(raws)[-1]
                except JournalFull:
                    mark = None
            except OSError as e:
                raise JournalError(f"{self.journal.path}: {e}") from e
            if mark is not None:
                self._queue.put((names, raws, mark, time.monotonic() + self.grace))
                if self._idle:
                    self._wake.set()
                if self.ship is not None:
                    try:
                        self.ship([(name, normalise(raw)) for name, raw in zip(names, raws)])
                    except Exception:  # they are durable; the spool files will carry them
                        log.exception("handing events to the shipper failed")
                return
        # Too big for the journal (or it cannot take them): the slow, direct way.
        self.sync_now()
        self._written(self.spool.write_many(raws, names=names))

    def acked(self, names: list[str]) -> None:
        """The broker has these events (shipped from memory): no spool file needed, and the one
        already written goes (thread-safe; called by the shipper)."""
        remove = []
        with self._lock:
            for name in names:
                if name in self._filed:
                    self._filed.discard(name)
                    remove.append(name)
                else:
                    self._acked.add(name)
        for name in remove:
            self.spool.remove(name)

    def sync_now(self) -> None:
        """Materialise and checkpoint everything committed so far."""
        done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        done.wait()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        held: deque = deque()  # committed, neither acked nor written to new/ yet, oldest first
        unsynced: list[str] = []
        mark = None  # the last settled event's journal mark, not checkpointed yet
        stuck = False
        next_sync = time.monotonic() + self.checkpoint_interval
        while True:
            timeout = max(0.0, next_sync - time.monotonic()) if (held or mark is not None) else None
            self._idle = timeout is None  # before looking at the queue: a commit after it wakes us
            if self._queue.empty():
                self._wake.wait(timeout)
            self._idle = False
            self._wake.clear()
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = "tick"
            waiters, stop = [], False
            while True:  # everything queued so far, in one go
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                elif item != "tick":
                    held.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            now = time.monotonic()
            force = bool(waiters) or stop
            while held and not stuck:
                names, raws, item_mark, due = held[0]
                if not force and due > now and not self._all_acked(names):
                    break
                if not self._settle(names, raws, unsynced):
                    stuck = True  # keep the checkpoint before them: the next start recovers them
                    break
                held.popleft()
                mark = item_mark
            if mark is not None and (force or now >= next_sync):
                try:
                    if unsynced:
                        self.spool.sync(unsynced)
                    self.journal.checkpoint(*mark)
                    unsynced, mark = [], None
                except OSError as e:  # the journal still holds them; try again next time
                    log.error("checkpoint of %s: %s", self.journal.path, e)
            if now >= next_sync:
                next_sync = time.monotonic() + self.checkpoint_interval
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _all_acked(self, names: list[str]) -> bool:
        with self._lock:
            return all(name in self._acked for name in names)

    def _settle(self, names: list[str], raws: list[bytes], unsynced: list[str]) -> bool:
        """Write the events the broker has not acked to new/ (without fsync; ``unsynced``)."""
        with self._lock:
            todo = [(name, raw) for name, raw in zip(names, raws) if name not in self._acked]
            self._acked.difference_update(names)
            if self.ship is not None:
                self._filed.update(name for name, _ in todo)
        if not todo:
            return True
        try:
            written = self.spool.write_many(
                [raw for _, raw in todo], durable=False, names=[n for n, _ in todo]
            )
        except EventSpoolError as e:  # still safe in the journal; recovered at the next start
            log.error("%s; the journal keeps these events until the dealer restarts", e)
            with self._lock:
                self._filed.difference_update(name for name, _ in todo)
            return False
        self.files_written += len(written)
        if self.ship is None:
            unsynced.extend(written)
            self._written(written)
            return True
        with self._lock:  # acked while we wrote them: acked() may have missed the file
            gone = {name for name in written if name not in self._filed}
        for name in gone:
            self.spool.remove(name)
        unsynced.extend(name for name in written if name not in gone)
        return True

    def _written(self, names: list[str]) -> None:
        _notify(self.on_written, names)


def _prepare_path(path: Path) -> None:
    """Remove a stale socket left by an earlier run; refuse to replace anything else."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    path.unlink()


def _grant(path: Path, owner: str | None) -> None:
    """Let Cyrus (user ``owner``) connect: sockets need write permission to connect/send."""
    if owner:
        import pwd

        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            log.warning("no user %r to give %s to; it stays %s's", owner, path, os.geteuid())
        else:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(SOCKET_MODE)


def _started(loop: asyncio.AbstractEventLoop | None, path: Path) -> asyncio.AbstractEventLoop:
    """The loop ``start()`` bound a listener to (its callbacks run only after that)."""
    if loop is None:
        raise RuntimeError(f"listener on {path} used before start()")
    return loop


def _reason_text(reason: str) -> bytes:
    safe = reason.replace("\\", "/").replace('"', "'").replace("\r", " ").replace("\n", " ")
    return b'NO "' + safe[:200].encode("utf-8", "replace") + b'"\r\n'


class DatagramListener:
    """Binds Cyrus's ``notifysocket`` (unix datagram) in place of notifyd."""

    def __init__(self, path: str | os.PathLike, writer: SpoolWriter, owner: str | None = None):
        self.path = Path(path)
        self.writer = writer
        self.owner = owner
        self.received = 0
        self.dropped = 0  # events of spool.DROPPED_EVENTS, not spooled
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _prepare_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self.path))
        _grant(self.path, self.owner)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        sock, loop = self._sock, _started(self._loop, self.path)
        if sock is None:  # closed
            return
        for _ in range(512):  # then let the loop breathe
            try:
                data, _, flags, _ = sock.recvmsg(DATAGRAM_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.error("receiving from %s: %s", self.path, e)
                return
            self.received += 1
            if flags & socket.MSG_TRUNC:
                self.writer.submit_bad(data, f"datagram longer than {DATAGRAM_BUFFER} bytes, cut short")
                continue
            try:
                notification = decode_datagram(data)
            except WireError as e:
                self.writer.submit_bad(data, f"datagram on {self.path}: {e}")
                continue
            if dropped(notification.message):
                self.dropped += 1
                continue
            self.writer.submit(notification.message)
            if self.writer.backlog > WRITER_HIGH_WATER and not self._paused:
                self._paused = True
                loop.remove_reader(sock.fileno())
                loop.call_later(0.01, self._maybe_resume)
                return

    def _maybe_resume(self) -> None:
        sock, loop = self._sock, _started(self._loop, self.path)
        if sock is None:
            return
        if self.writer.backlog > WRITER_HIGH_WATER // 2:
            loop.call_later(0.01, self._maybe_resume)
            return
        self._paused = False
        loop.add_reader(sock.fileno(), self._on_readable)

    async def close(self) -> None:
        if self._sock is not None:
            if not self._paused:
                _started(self._loop, self.path).remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self.path.unlink(missing_ok=True)


class _Connection:
    """One Cyrus connection: its socket, its frame parser, how many of its frames wait for an
    answer, whether the loop watches it, whether the peer has sent all it will (``done``)."""

    __slots__ = ("sock", "parser", "closed", "waiting", "watched", "done")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.parser = DlistFrameParser()
        self.closed = False
        self.waiting = 0
        self.watched = False
        self.done = False


class StreamListener:
    """Serves ``notifysocket: dlist:PATH``: one unix stream connection per event, answered
    ``OK NIL`` once the event is durable.

    Cyrus sends one event and waits, serially per delivery, so latency is what costs delivery
    rate: no transports, tasks or threads per event. Frames that complete in the same turn of
    the event loop are committed together (one batch, one group of fsyncs) right there in the
    loop, and answered. The loop is busy for one commit at most; every Cyrus process waiting on
    us is waiting for exactly that commit anyway, and new connections queue in the kernel
    meanwhile (and join the next batch). A connection is read as soon as it is accepted (lmtpd
    has written its frame by then, as a rule) and watched only while a frame is incomplete;
    once every frame it sent is answered, the listener closes it (Cyrus reads the answer and
    closes its end anyway): two epoll changes and a wake-up per event fewer.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        spool: EventSpool,
        commit: Callable[[list[bytes]], None],
        owner: str | None = None,
    ):
        self.path = Path(path)
        self.spool = spool  # for quarantine
        self.commit = commit  # returns once the events are durable
        self.owner = owner
        self.received = 0
        self.dropped = 0  # events of spool.DROPPED_EVENTS: answered at once, not spooled
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: dict[int, _Connection] = {}
        # (connection, event or None: answer in turn, commit nothing)
        self._batch: list[tuple[_Connection, bytes | None]] = []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _prepare_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind(str(self.path))
        sock.listen(1024)
        _grant(self.path, self.owner)
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        sock = self._sock
        if sock is None:  # closed
            return
        for _ in range(256):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and friends: the connection waits in the backlog
                log.error("accepting on %s: %s", self.path, e)
                return
            conn.setblocking(False)
            c = _Connection(conn)
            self._conns[conn.fileno()] = c
            self._on_data(c)  # Cyrus has usually written its frame by now: then no watching at all

    def _watch(self, c: _Connection) -> None:
        if not c.watched and not c.closed:
            c.watched = True
            _started(self._loop, self.path).add_reader(c.sock.fileno(), self._on_data, c)

    def _on_data(self, c: _Connection) -> None:
        try:
            data = c.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            self._watch(c)
            return
        except OSError:
            data = b""
        if not data:
            if c.parser.error is None and c.parser.pending:
                self._quarantine(
                    c.parser.pending,
                    f"dlist frame on {self.path}: connection closed in the middle "
                    f"of a frame ({len(c.parser.pending)} bytes)",
                )
            self._close(c)
            return
        if c.parser.error is not None:
            return  # refused already; waiting for the peer to go
        for notification in c.parser.feed(data):
            self.received += 1
            message: bytes | None = notification.message
            if dropped(notification.message):
                self.dropped += 1
                if not c.waiting:
                    self._send(c, OK_REPLY)  # nothing of this peer's before it: no need to wait
                    continue
                message = None  # answered in its turn, after the peer's earlier frames
            if not self._batch:
                _started(self._loop, self.path).call_soon(self._commit)
            self._batch.append((c, message))
            c.waiting += 1
        if c.parser.error is not None:
            reason = f"dlist frame on {self.path}: {c.parser.error}"
            self._quarantine(c.parser.pending, reason)
            self._send(c, _reason_text(reason))
            self._close(c)
        elif c.parser.pending:
            self._watch(c)  # the rest of a frame is on its way
        else:
            # Every frame complete: Cyrus sends one per connection and reads the answer, so the
            # connection is closed once its frames are answered (no watching for its close).
            c.done = True
            if not c.waiting:
                self._close(c)

    def _commit(self) -> None:
        batch, self._batch = self._batch, []
        reply = OK_REPLY
        messages = [message for _, message in batch if message is not None]
        try:
            if messages:
                self.commit(messages)
        except OSError as e:
            log.error("%s", e)
            reply = _reason_text(f"vault dealer could not spool the event: {e}")
        for c, message in batch:
            self._send(c, OK_REPLY if message is None else reply)
            c.waiting -= 1
            if c.done and not c.waiting:
                self._close(c)

    def _send(self, c: _Connection, reply: bytes) -> None:
        if c.closed:
            return  # durable all the same; nobody left to tell
        try:
            c.sock.send(reply)  # a few bytes into an idle socket: never would block in practice
        except OSError as e:
            log.warning("replying on %s: %s", self.path, e)
            self._close(c)

    def _quarantine(self, raw: bytes, reason: str) -> None:
        log.warning("quarantined %d bytes in %s: %s", len(raw), self.spool.bad, reason)
        try:
            self.spool.quarantine(raw, reason)
        except EventSpoolError as e:
            log.error("%s", e)

    def _close(self, c: _Connection) -> None:
        if c.closed:
            return
        c.closed = True
        fd = c.sock.fileno()
        if c.watched:
            _started(self._loop, self.path).remove_reader(fd)
        self._conns.pop(fd, None)
        c.sock.close()

    async def close(self) -> None:
        if self._batch:
            self._commit()
        if self._sock is not None:
            _started(self._loop, self.path).remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self.path.unlink(missing_ok=True)
        for c in list(self._conns.values()):
            self._close(c)
