"""The dealer daemon's listeners: Cyrus's notify socket in datagram or dlist-stream form.

Cyrus waits on us: in stream mode lmtpd/imapd block until we answer each frame, and with no
timeout; in datagram mode the socket queues only ~10 datagrams before senders stall. So the
event loop (asyncio, one thread) never touches the disk: it decodes and hands each event to a
:class:`SpoolWriter` thread, which writes whatever has queued up as one group commit (files
fsynced together, one directory fsync) and only then lets the loop answer ``OK NIL``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from vault.ingest.notify_wire import OK_REPLY, DlistFrameParser, WireError, decode_datagram
from vault.ingest.spool import Spool, SpoolError

log = logging.getLogger(__name__)

# Cyrus caps a datagram at 64 KiB; anything longer than this buffer is reported as truncated.
DATAGRAM_BUFFER = 256 * 1024
# Past this many unwritten events the datagram listener stops reading until the writer catches
# up (the kernel queue then pushes back on Cyrus instead of our memory growing without bound).
WRITER_HIGH_WATER = 20000
SOCKET_MODE = 0o660


class SpoolWriter:
    """Writes submitted events to the spool on its own thread, in batches."""

    def __init__(self, spool: Spool, on_written: Callable[[list[str]], None] | None = None,
                 max_batch: int = 512, fsync_threads: int = 4):
        self.spool = spool
        self.on_written = on_written
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(fsync_threads, thread_name_prefix="spool-fsync")
        self._backlog = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._backlog

    def submit(self, raw: bytes) -> Future:
        """Future of the event's name in new/, resolved once it is durable."""
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
        """Write everything submitted so far, then stop."""
        self._queue.put(None)
        self._thread.join()
        self._pool.shutdown()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
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
                self._settle(fut, lambda: self.spool.quarantine(raw, reason))
                log.warning("quarantined %d bytes in %s: %s", len(raw), self.spool.bad, reason)
        if not good:
            return
        try:
            names = self.spool.write_many([raw for raw, _ in good], fsync_pool=self._pool)
        except SpoolError as e:
            log.error("%s", e)
            for _, fut in good:
                fut.set_exception(e)
            return
        for (_, fut), name in zip(good, names):
            fut.set_result(name)
        if self.on_written is not None:
            try:
                self.on_written(names)
            except Exception:  # a shipper problem must not stop the writing
                log.exception("on_written callback failed")

    @staticmethod
    def _settle(fut: Future, work) -> None:
        try:
            fut.set_result(work())
        except SpoolError as e:
            log.error("%s", e)
            fut.set_exception(e)


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
        for _ in range(512):  # then let the loop breathe
            try:
                data, _, flags, _ = self._sock.recvmsg(DATAGRAM_BUFFER)
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
            self.writer.submit(notification.message)
            if self.writer.backlog > WRITER_HIGH_WATER and not self._paused:
                self._paused = True
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(0.01, self._maybe_resume)
                return

    def _maybe_resume(self) -> None:
        if self._sock is None:
            return
        if self.writer.backlog > WRITER_HIGH_WATER // 2:
            self._loop.call_later(0.01, self._maybe_resume)
            return
        self._paused = False
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    async def close(self) -> None:
        if self._sock is not None:
            if not self._paused:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self.path.unlink(missing_ok=True)


class _NotifyConnection(asyncio.Protocol):
    """One Cyrus connection: NOTIFY frames in, ``OK NIL`` out once each event is durable."""

    def __init__(self, listener: StreamListener):
        self.listener = listener
        self.parser = DlistFrameParser()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.parser.error is not None:
            return
        for notification in self.parser.feed(data):
            self.listener.received += 1
            future = self.listener.writer.submit(notification.message)
            future.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._written, f))
        if self.parser.error is not None:
            self._reject(f"dlist frame on {self.listener.path}: {self.parser.error}")

    def _written(self, future: Future) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # durable all the same; nobody left to tell
        if future.exception() is not None:
            self.transport.write(_reason_text(f"vault dealer could not spool the event: {future.exception()}"))
        else:
            self.transport.write(OK_REPLY)

    def _reject(self, reason: str) -> None:
        self.listener.writer.submit_bad(self.parser.pending, reason)
        self.transport.write(_reason_text(reason))
        self.transport.close()

    def eof_received(self):
        if self.parser.error is None and self.parser.pending:
            self.listener.writer.submit_bad(
                self.parser.pending,
                f"dlist frame on {self.listener.path}: connection closed in the middle of a frame "
                f"({len(self.parser.pending)} bytes)")
        return False

    def connection_lost(self, exc) -> None:
        self.transport = None


class StreamListener:
    """Serves ``notifysocket: dlist:PATH``: one unix stream connection per event."""

    def __init__(self, path: str | os.PathLike, writer: SpoolWriter, owner: str | None = None):
        self.path = Path(path)
        self.writer = writer
        self.owner = owner
        self.received = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        _prepare_path(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _NotifyConnection(self), path=str(self.path),
                                                     backlog=1024)
        _grant(self.path, self.owner)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)
