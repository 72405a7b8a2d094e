"""An import's second core: a worker process that extracts text and compresses frames.

An import indexes and stores every new message; reading a message's text (text.extract, pure
Python) and compressing it (zstd) are the parts of that which hold the writer for long. In a
bulk run (Vault.bulk) the indexer hands each new message to a ``TextPool`` as it is stored, and
the store hands it each blob it stores (``ContentStore.ahead``); the worker process extracts
the text and compresses the frame while the writer goes on reading, hashing and recording the
next ones: the frames are ready when the batch's commit writes its pack, the Fields when it
indexes them. A message put and offered together travels to the worker once.

The worker is this module run in a fresh interpreter (``python -I -S``, the vault package's
own directory and zstandard's on its path: it imports only text.py, quickparse.py, zstandard and the
standard library), fed chunks over a pipe: compressors to make (a level, a dictionary's bytes)
and messages ``(blob, bytes, text wanted, compressor or None)``; it answers each chunk's frames
first, then its Fields. Nothing depends on it: a message it has not answered for (not sent,
still in flight when it died, or one whose extraction raised there) is extracted in the
writer, as without a pool, and a frame not back when the store writes its pack (after a
short wait at a flush, ``AHEAD_PATIENCE``; none for one not sent yet) is compressed there;
the result is the same either way (the same function
on the same bytes, and every frame is decompressed and compared by the writer before it is
stored, wherever it was made).
"""

from __future__ import annotations

import collections
import os
import pickle
import select
import struct
import time
from collections.abc import Container
from multiprocessing.connection import Connection
from pathlib import Path

import zstandard

from vault.index.text import Fields, extract
from vault.piped_child import PipedChild

CHUNK_MESSAGES = 16  # messages a chunk; one chunk also goes as soon as it holds CHUNK_BYTES
CHUNK_BYTES = 1 << 20
_ZSTANDARD_ROOT = Path(zstandard.__file__).resolve().parents[1]  # the directory that holds zstandard/


class TextPool:
    def __init__(self) -> None:
        self._child = PipedChild("vault.index.textpool", "serve", (_ZSTANDARD_ROOT,))
        self._child_in, self._child_out = self._child.to_child, self._child.from_child
        self._recv_conn = Connection(self._child_out, writable=False)
        # Only the writer's thread talks to the worker: it writes chunks without blocking (what
        # the pipe cannot take yet goes on the next chance, _pump), reads answers when it wants
        # one and drains what came when it looks for frames. A thread of its own would wait for
        # the interpreter lock up to a switch interval (5 ms) each time, the writer running
        # Python non-stop: the worker would starve.
        os.set_blocking(self._child_in, False)
        self._unsent: collections.deque[memoryview] = collections.deque()  # chunks on their way
        self._wanted: set[str] = set()  # offered and not yet taken or forgotten
        self._results: dict[str, Fields | None] = {}
        self._frames_wanted: set[str] = set()  # compress asked for, not yet taken or forgotten
        self._frames: dict[str, bytes | None] = {}
        self._alive = True
        # entries: ["compressor", name, level, dictionary] | ["message", blob, data, text?, compressor]
        self._chunk: list[list] = []
        self._in_chunk: dict[str, list] = {}  # blob -> its message in the chunk not sent yet
        self._chunk_bytes = 0

    # ------------------------------------------------------------ the writer's side

    def submit(self, blob: str, data: bytes) -> None:
        """Extract this message's text ahead (once however often it is offered)."""
        if blob in self._wanted or not self._alive:
            return
        self._wanted.add(blob)
        self._add(blob, data)[3] = True

    def compressor(self, name: str, level: int, dictionary: bytes | None) -> None:
        """Make compressor ``name`` in the worker: zstd at ``level``, with this dictionary."""
        if self._alive:
            self._chunk.append(["compressor", name, level, dictionary])

    def compress(self, blob: str, data: bytes, compressor: str) -> None:
        """Compress this blob ahead with ``compressor`` (made before): see :meth:`frame`."""
        if not self._alive:
            return
        self._frames_wanted.add(blob)
        self._add(blob, data)[4] = compressor

    def frame(self, blob: str, until: float | None = None) -> bytes | None:
        """The frame made for ``blob`` if it is back, or comes before ``until`` (a
        time.monotonic(); None: no waiting). None: none (not asked for, not back, still in the
        chunk not sent, which then goes without it, the worker gone or its compression
        failed): the caller compresses it."""
        message = self._in_chunk.get(blob)
        if message is not None and message[4] is not None:  # not sent: sooner made there
            message[4] = None
            self._frames_wanted.discard(blob)
            return None
        self._drain()
        while until is not None and blob in self._frames_wanted and blob not in self._frames and self._alive:
            left = until - time.monotonic()
            if left <= 0:
                break
            self._wait(left)
        self._frames_wanted.discard(blob)
        return self._frames.pop(blob, None)

    def forget_frames(self) -> None:
        """Drop the frames asked for and not taken (the store discarded those blobs)."""
        self._frames_wanted.clear()
        self._frames.clear()

    def _add(self, blob: str, data: bytes) -> list:
        """This blob's message in the chunk to send (one for both jobs: the data goes once)."""
        message = self._in_chunk.get(blob)
        if message is None:
            if self._unsent:
                self._pump()
            if len(self._in_chunk) >= CHUNK_MESSAGES or self._chunk_bytes >= CHUNK_BYTES:
                self._send()
            message = ["message", blob, data, False, None]
            self._chunk.append(message)
            self._in_chunk[blob] = message
            self._chunk_bytes += len(data)
        return message

    def take(self, blob: str) -> Fields | None:
        """The Fields of an offered message (waiting for the worker); None when it has none
        for it (not offered, the worker gone, or its extraction failed there)."""
        if blob in self._in_chunk:
            self._send()
        if blob not in self._wanted:
            return None
        while blob not in self._results and self._alive:
            self._wait()
        self._wanted.discard(blob)
        return self._results.pop(blob, None)

    def pending(self, blob: str) -> bool:
        """Whether this message's text is still to come from the worker (offered, not back)."""
        self._drain()
        return self._alive and blob in self._wanted and blob not in self._results

    def forget(self, keep: Container[str] = ()) -> None:
        """Drop what was offered and not taken (the batch was committed without it), but
        for the messages in ``keep``."""
        self._send()
        self._wanted = {blob for blob in self._wanted if blob in keep}
        self._results = {blob: f for blob, f in self._results.items() if blob in keep}

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def close(self) -> None:
        self._chunk, self._in_chunk = [], {}
        self._wanted.clear()
        self._frames_wanted.clear()
        while self._alive and self._unsent:  # what is on its way still goes (a worker stops at its end)
            self._wait()
        os.close(self._child_in)  # the worker's end of input: it answers what it has and exits
        # its output ends as it exits: read to its end (the worker must not block writing),
        # which is waiting for the exit (Popen.wait with a timeout polls, sleeping up to 50 ms past it)
        while self._alive:
            self._receive()
        self._child.reap()
        self._recv_conn.close()

    def _send(self) -> None:
        if self._chunk:
            if self._alive:
                payload = pickle.dumps(self._chunk, protocol=pickle.HIGHEST_PROTOCOL)
                header = struct.pack("!i", len(payload))  # as Connection.send_bytes frames it
                self._unsent.append(memoryview(header + payload))
                self._pump()
                self._drain()  # a worker whose answers fill their pipe reads no more
            self._chunk, self._in_chunk, self._chunk_bytes = [], {}, 0

    def _pump(self) -> None:
        """Write what of the chunks on their way the pipe takes now."""
        try:
            while self._unsent:
                view = self._unsent[0]
                written = os.write(self._child_in, view)
                if written == len(view):
                    self._unsent.popleft()
                else:
                    self._unsent[0] = view[written:]
        except BlockingIOError:
            pass
        except OSError:  # the worker died (EPIPE): its output ends too
            self._unsent.clear()
            self._alive = False

    def _wait(self, timeout: float | None = None) -> None:
        """Wait until an answer comes (and take it in), writing what is on its way meanwhile;
        ``timeout``: for that long at most."""
        if not self._unsent and timeout is None:
            self._receive()
            return
        writing = [self._child_in] if self._unsent else []
        readable, writable, _ = select.select([self._child_out], writing, [], timeout)
        if writable:
            self._pump()
        if readable:
            self._receive()

    def _drain(self) -> None:
        """Take in the answers that came (without waiting)."""
        try:
            # select, not Connection.poll: that builds a selector each call (~40 us)
            while self._alive and select.select([self._child_out], [], [], 0)[0]:
                self._receive()
        except OSError:
            self._alive = False

    def _receive(self) -> None:
        """Take in one answer (waiting for it); the worker's output ended: it is gone."""
        try:
            kind, answers = self._recv_conn.recv()
        except (EOFError, OSError):
            self._alive = False
            return
        if kind == "frames":
            for blob, frame in answers:
                if blob in self._frames_wanted:
                    self._frames[blob] = frame
        else:
            for blob, fields in answers:
                if blob in self._wanted:
                    self._results[blob] = fields


# ------------------------------------------------------------ the worker's side


def serve(read_fd: int, write_fd: int) -> None:
    """The worker: chunks in, answers out, until its input ends. Frames go first: every chunk
    that came is compressed and answered before the next chunk's text is extracted (the
    writer's commit waits for frames; the text it needs later)."""
    incoming = Connection(read_fd, writable=False)
    outgoing = Connection(write_fd, readable=False)
    compressors: dict[str, zstandard.ZstdCompressor] = {}
    texts: collections.deque[list[tuple[str, bytes]]] = collections.deque()
    ended = False
    while not ended or texts:
        while not ended and (not texts or incoming.poll()):  # waits only with nothing to do
            try:
                chunk = incoming.recv()
            except EOFError:
                ended = True
                break
            frames, wanted = _frames(chunk, compressors)
            if frames:
                outgoing.send(("frames", frames))
            if wanted:
                texts.append(wanted)
        if texts:
            outgoing.send(("fields", [(blob, _fields(data)) for blob, data in texts.popleft()]))
    outgoing.close()


def _frames(chunk: list, compressors: dict) -> tuple[list[tuple[str, bytes | None]], list[tuple[str, bytes]]]:
    """A chunk's frames (made now), and its messages whose text is wanted (for later)."""
    frames: list[tuple[str, bytes | None]] = []
    texts: list[tuple[str, bytes]] = []
    for entry in chunk:
        if entry[0] == "compressor":
            _, name, level, dictionary = entry
            compressors[name] = _compressor(level, dictionary)
            continue
        _, blob, data, text, name = entry
        if name is not None:
            try:
                frames.append((blob, compressors[name].compress(data)))
            except Exception:  # the writer compresses what is not answered with a frame
                frames.append((blob, None))
        if text:
            texts.append((blob, data))
    return frames, texts


def _fields(data: bytes) -> Fields | None:
    try:
        return extract(data)
    except Exception:  # extract never raises; if it did, the writer's own call reports it
        return None


def _compressor(level: int, dictionary: bytes | None) -> zstandard.ZstdCompressor:
    if dictionary is None:
        return zstandard.ZstdCompressor(level=level)
    return zstandard.ZstdCompressor(level=level, dict_data=zstandard.ZstdCompressionDict(dictionary))
