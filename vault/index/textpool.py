"""Text extraction for the index on the machine's second core: a worker process.

An import indexes every new message; reading a message's text (text.extract, pure Python)
is the one part of that which holds the interpreter for long. In a bulk run (Vault.bulk) the
indexer hands each new message to a ``TextPool`` as it is stored, a worker process extracts
it while the writer goes on reading, hashing and storing the next ones, and the Fields are
ready when the batch's commit indexes them.

The worker is this module run in a fresh interpreter (``python -I -S``, the vault package's
own directory on its path: it imports only text.py and the standard library), fed chunks of
``(blob, bytes)`` over a pipe and answering ``(blob, Fields | None)``. Nothing depends on it:
a message it has not answered for (not sent, still in flight when it died, or one whose
extraction raised there) is extracted in the writer, as without a pool; the result is the same
either way (the same function on the same bytes).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from vault.index.text import Fields, extract

CHUNK_MESSAGES = 16  # messages a chunk; one chunk also goes as soon as it holds CHUNK_BYTES
CHUNK_BYTES = 1 << 20
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds vault/


class TextPool:
    def __init__(self) -> None:
        to_child, self._child_in = os.pipe()
        self._child_out, from_child = os.pipe()
        code = (
            f"import sys; sys.path.insert(0, {str(_PACKAGE_ROOT)!r}); "
            f"from vault.index.textpool import serve; serve({to_child}, {from_child})"
        )
        try:
            self._proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code],
                pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.close(to_child)
            os.close(from_child)
        self._send_conn = Connection(self._child_in, readable=False)
        self._recv_conn = Connection(self._child_out, writable=False)
        self._lock = threading.Condition()
        self._wanted: set[str] = set()  # offered and not yet taken or forgotten
        self._results: dict[str, Fields | None] = {}
        self._alive = True
        self._chunk: list[tuple[str, bytes]] = []
        self._chunk_bytes = 0
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send_loop, name="textpool-send", daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, name="textpool-receive", daemon=True)
        self._sender.start()
        self._receiver.start()

    # ------------------------------------------------------------ the writer's side

    def submit(self, blob: str, data: bytes) -> None:
        """Extract this message's text ahead (once however often it is offered)."""
        with self._lock:
            if blob in self._wanted or not self._alive:
                return
            self._wanted.add(blob)
        self._chunk.append((blob, data))
        self._chunk_bytes += len(data)
        if len(self._chunk) >= CHUNK_MESSAGES or self._chunk_bytes >= CHUNK_BYTES:
            self._send()

    def take(self, blob: str) -> Fields | None:
        """The Fields of an offered message (waiting for the worker); None when it has none
        for it (not offered, the worker gone, or its extraction failed there)."""
        if any(b == blob for b, _ in self._chunk):
            self._send()
        with self._lock:
            if blob not in self._wanted:
                return None
            while blob not in self._results and self._alive:
                self._lock.wait()
            self._wanted.discard(blob)
            return self._results.pop(blob, None)

    def forget(self) -> None:
        """Drop what was offered and not taken (the batch was committed without it)."""
        self._send()
        with self._lock:
            self._wanted.clear()
            self._results.clear()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        self._chunk = []
        self._outbox.put(None)
        self._sender.join()  # its input closed, the worker answers what it has and exits
        # its output ends as it exits: waited for on the pipe (Popen.wait with a timeout polls,
        # sleeping up to 50 ms past the exit)
        self._receiver.join(timeout=10)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=0 if self._receiver.is_alive() else 10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._receiver.join()  # the worker's output ended with it
        self._recv_conn.close()

    def _send(self) -> None:
        if self._chunk:
            self._outbox.put(self._chunk)
            self._chunk, self._chunk_bytes = [], 0

    def _send_loop(self) -> None:
        try:
            while True:
                chunk = self._outbox.get()
                if chunk is None:
                    break
                self._send_conn.send(chunk)
        except OSError:  # the worker died: the receiver sees it too
            pass
        finally:
            self._send_conn.close()  # the worker's end of input: it answers what it has, exits

    def _receive_loop(self) -> None:
        try:
            while True:
                answers = self._recv_conn.recv()
                with self._lock:
                    for blob, fields in answers:
                        if blob in self._wanted:
                            self._results[blob] = fields
                    self._lock.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            with self._lock:
                self._alive = False
                self._lock.notify_all()


# ------------------------------------------------------------ the worker's side


def serve(read_fd: int, write_fd: int) -> None:
    """The worker: chunks in, answers out, until its input ends."""
    incoming = Connection(read_fd, writable=False)
    outgoing = Connection(write_fd, readable=False)
    while True:
        try:
            chunk = incoming.recv()
        except EOFError:
            break
        answers: list[tuple[str, Fields | None]] = []
        for blob, data in chunk:
            try:
                answers.append((blob, extract(data)))
            except Exception:  # extract never raises; if it did, the writer's own call reports it
                answers.append((blob, None))
        outgoing.send(answers)
    outgoing.close()
