"""The dealer: takes Cyrus's events into the local spool and keeps shipping them to the broker.

Three ways in (docs/architecture.md 1.2; the wire formats as captured: tests/data/README.md):

- *external*: notifyd execs a program per event, serially, and Cyrus's delivery rate suffers for
  every millisecond, fork and file creation it costs. :func:`render_hook` writes that program as
  a /bin/sh script that forks nothing and appends to one log (see vault/ingest/hook_log.py);
  :func:`spool_stdin` is the same job in Python for sites that prefer ``vaultctl dealer``
  itself (a Python start-up per event costs ~90% of the delivery rate).
- *socket*: our daemon binds ``notifysocket`` (datagrams) instead of notifyd.
- *stream*: our daemon serves ``notifysocket: dlist:PATH`` and acknowledges each event only
  once it is durable: the only mode in which no event can be lost between Cyrus and the spool.

:func:`serve` runs the daemon: the listener (none in external mode) and the shipper.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vault.curve.guard import ClientCurve
from vault.ingest.dealer.hook_log import LOG_NAME as HOOK_LOG
from vault.ingest.dealer.journal import Journal
from vault.ingest.dealer.listeners import (
    SOCKET_GATHER,
    DatagramListener,
    JournaledSpool,
    SpoolWriter,
    StreamListener,
)
from vault.ingest.dealer.shipper import Shipper
from vault.ingest.dealer.spool import EventSpool, normalise

log = logging.getLogger(__name__)

MODES = ("external", "socket", "stream")
JOURNAL_NAME = "journal"  # the listeners' write-ahead journal, inside the spool directory
# The shipper's wait for more events after a wake (Shipper.gather): at Cyrus's pace, events one
# by one cost a wake of the shipper and of ZeroMQ's I/O thread each way per event; gathered,
# per burst. Lag it adds: at most this (the lag target is 1 s).
SHIP_GATHER = 0.01

HOOK_TEMPLATE = """\
#!/bin/sh
# vault dealer hook, written by 'vaultctl dealer install-hook' (re-run that instead of editing).
# notifyd runs it once per event, serially, as user cyrus: argv -c EVENT -p '' -u '' -m '' -f,
# the event's JSON plus a newline on stdin. Every fork and every file created here slows mail
# delivery, so the shell replaces itself with dd, which appends stdin to the spool's hook
# log{fsync_note}; the dealer's shipper turns the log into spool files (vault/ingest/hook_log.py).
exec dd of={log} oflag=append conv={conv} bs=64k status=none
"""


def render_hook(spool_root: str | os.PathLike, fsync: bool = True) -> str:
    """The per-event /bin/sh hook appending to ``spool_root``'s hook log."""
    return HOOK_TEMPLATE.format(
        log=shlex.quote(str(Path(spool_root).absolute() / HOOK_LOG)),
        conv="notrunc,fsync" if fsync else "notrunc",
        fsync_note=" and fsyncs it" if fsync else " (no fsync: durable at the next writeback)",
    )


def install_hook(
    spool_root: str | os.PathLike, output: str | os.PathLike, owner: str | None = "cyrus", fsync: bool = True
) -> Path:
    """Create the spool (writable by ``owner``, the user notifyd runs as) and write the hook to
    ``output`` (mode 0755, replaced atomically). Returns the hook's path."""
    spool = EventSpool(spool_root)
    if owner:
        spool.grant(owner)
    output = Path(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}")
    tmp.write_text(render_hook(spool.root, fsync=fsync))
    tmp.chmod(0o755)
    os.replace(tmp, output)
    return output


def spool_stdin(spool_root: str | os.PathLike, stdin: BinaryIO) -> str:
    """The external notifier in Python: stdin's event into the spool, durably; its name in new/
    (or in bad/ when stdin held nothing)."""
    spool = EventSpool(spool_root)
    raw = stdin.read()
    if not normalise(raw):
        return spool.quarantine(raw, "external notifier got no event on stdin")
    return spool.write(raw)


@dataclass
class DealerSettings:
    mode: str
    spool: Path
    broker: str  # "" ships nothing (spool only)
    listen: Path | None = None
    window: int = 100
    ack_timeout: float = 5.0
    origin: str | None = None
    socket_owner: str | None = None
    # seconds an event shipped from memory may wait for the broker's ack before it is written
    # to the spool anyway (listeners.JournaledSpool)
    ship_grace: float = 0.5
    # fdatasync the journal before an event is answered ([dealer] sync; journal.Journal)
    sync: bool = True
    curve: ClientCurve | None = None  # CURVE to the broker (vault/curve/); None: plain

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown dealer mode {self.mode!r} (one of {', '.join(MODES)})")
        if self.mode != "external" and not self.listen:
            raise ValueError(f"{self.mode} mode needs a socket path to listen on")


class Dealer:
    """The daemon: listener + spool writer + shipper, started and stopped together."""

    def __init__(self, settings: DealerSettings):
        self.settings = settings
        self.spool = EventSpool(settings.spool)
        self.shipper: Shipper | None = None
        self.writer: SpoolWriter | None = None
        self.journaled: JournaledSpool | None = None
        self.listener: DatagramListener | StreamListener | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, ready: Callable[[Dealer], None] | None = None, handle_signals: bool = True) -> None:
        """Serve until SIGTERM/SIGINT (or :meth:`stop`); ``ready`` is called once listening."""
        s = self.settings
        # Cyrus waits on the loop thread for every stream event; when the shipper or the
        # materialiser holds the GIL, the default 5 ms switch interval is what that wait costs.
        sys.setswitchinterval(0.0002)
        if s.broker:
            self.shipper = Shipper(
                self.spool,
                s.broker,
                origin=s.origin,
                window=s.window,
                ack_timeout=s.ack_timeout,
                curve=s.curve,
                gather=SHIP_GATHER,
            )
            self.shipper.start()
        try:
            asyncio.run(self._serve(ready, handle_signals))
        finally:
            if self.shipper is not None:
                self.shipper.stop()

    def stop(self) -> None:
        """Thread-safe."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _serve(self, ready, handle_signals: bool) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
        on_written = self.shipper.wake if self.shipper is not None else None
        if s.mode != "external":
            if s.listen is None:  # DealerSettings refuses this
                raise ValueError(f"{s.mode} mode needs a socket path to listen on")
            # shipping straight from memory: most events never need a spool file (listeners.py)
            ship = self.shipper.offer if self.shipper is not None else None
            self.journaled = journaled = JournaledSpool(
                self.spool,
                Journal(self.spool.root / JOURNAL_NAME, sync=s.sync),
                on_written,
                ship=ship,
                grace=s.ship_grace,
            )
            if self.shipper is not None:
                self.shipper.on_acked = journaled.acked
            recovered = journaled.recover()
            if recovered:
                log.info("recovered %d event(s) from the journal", recovered)
            journaled.start()
            if s.mode == "socket":
                self.writer = SpoolWriter(self.spool, journaled.commit, gather=SOCKET_GATHER)
                self.listener = DatagramListener(s.listen, self.writer, owner=s.socket_owner)
            elif s.mode == "stream":
                self.listener = StreamListener(s.listen, self.spool, journaled.commit, owner=s.socket_owner)
        if self.listener is not None:
            await self.listener.start()
        log.info(
            "dealer (%s mode) spooling to %s%s%s",
            s.mode,
            self.spool.root,
            f", listening on {s.listen}" if self.listener else "",
            f", shipping to {s.broker}" if s.broker else ", not shipping",
        )
        if ready is not None:
            ready(self)
        await self._stop.wait()
        if self.listener is not None:
            await self.listener.close()
        if self.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.journaled is not None:
            self.journaled.close()
