"""Reading a source ahead of the writer, in a process of its own (issue 17, item 6).

An import reads and hashes every new message before the writer records it. On threads of the
writer's own process those reads wait for the interpreter lock up to a switch interval (5 ms)
each time they come back from a system call while the writer runs Python: they starve, and the
writer waits for them. A ``ReadAhead`` is this module run in a fresh interpreter
(``python -I -S``: the standard library and this package's stdlib-only modules, tree.py,
model.py and mailformat.py), handed the files to read chunk by chunk over a pipe. It opens each
as the writer would (a SourceTree of the same root and ``follow_symlinks``: no link followed
that the writer would not follow, no FIFO or device opened), reads and hashes it, and answers
for each message a ``Read``: its blob id, size, Message-ID, whether it looks like mail, and its
bytes the first time this run meets that content. A later copy's bytes are not sent back: the
writer stored the first, or (``Importer``) reads the file again itself. A read that fails is
answered with its errno and reason.

Nothing depends on the process: when it cannot start or dies, what it has not answered is
read in the writer (``read_message``), with the same result. Only the writer's thread talks to
it, and never blocks writing: the chunks it has sent and not had answered are kept under a
budget the pipe can always take (``REQUEST_BUDGET``), whatever the worker is doing.
"""

from __future__ import annotations

import collections
import contextlib
import errno as errnos
import os
import pickle
import struct
from multiprocessing.connection import Connection
from typing import NamedTuple

from vault.ingest.importers.base import looks_like_mail
from vault.ingest.importers.tree import Rel, SourceError, SourceTree
from vault.mailformat import message_id_of
from vault.model import blob_id
from vault.piped_child import PipedChild

REQUEST_BUDGET = 48 << 10  # request bytes unanswered at most: less than any pipe holds (64 KiB)


class Read(NamedTuple):
    """One message read: ``data`` None when this run was given those bytes before."""

    data: bytes | None
    bid: str
    size: int
    message_id: str | None
    mail_like: bool


def read_of(data: bytes, *, keep: bool = True) -> Read:
    """What the writer needs of a message's bytes (``keep``: with the bytes)."""
    return Read(data if keep else None, blob_id(data), len(data), message_id_of(data), looks_like_mail(data))


def _frame(message: tuple) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("!i", len(payload)) + payload  # as Connection.send_bytes frames it


class ReadAhead:
    """The writer's side: ``tree`` names a source to the worker, ``submit`` asks for a chunk
    of its files, ``answer`` gives that chunk's reads (None for each: read them yourself)."""

    def __init__(self) -> None:
        self._child = PipedChild("vault.ingest.importers.readahead", "serve")
        self._to_child = self._child.to_child
        from_child = self._child.from_child
        self._from_child = Connection(from_child, writable=False)
        self._alive = True
        self._trees = 0
        self._tickets = 0  # chunks asked for
        self._answered = 0  # chunks answered, in order
        self._answers: dict[int, list] = {}  # answered, not yet taken
        self._in_flight: collections.deque[tuple[int, int]] = collections.deque()  # (ticket, bytes)
        self._in_flight_bytes = 0
        self._asked: dict[int, int] = {}  # ticket -> messages in its chunk, until taken

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def tree(self, tree: SourceTree) -> int:
        """A name for this source's tree in the worker's requests."""
        self._trees += 1
        self._send(("tree", self._trees, str(tree.root), tree.follow), answered=False)
        return self._trees

    def release(self, tree: int) -> None:
        """The worker closes what it kept open of this tree."""
        self._send(("close", tree), answered=False)

    def submit(self, tree: int, rels: list[Rel]) -> int:
        """Ask for these files of ``tree`` to be read; the ticket to ``answer`` with."""
        self._tickets += 1
        self._send(("read", tree, rels), answered=True)
        return self._tickets

    def answer(self, ticket: int) -> list[Read | OSError | None]:
        """The reads of chunk ``ticket`` (waiting for them), in the order asked: a Read, the
        OSError the read met, or None when the worker is gone without answering it."""
        while self._alive and ticket not in self._answers and self._answered < ticket:
            self._receive()
        got = self._answers.pop(ticket, None)
        if got is None:
            return [None] * self._asked.pop(ticket, 0)
        self._asked.pop(ticket, None)
        return [Read(*entry[1:]) if entry[0] == "ok" else OSError(entry[1], entry[2]) for entry in got]

    def close(self) -> None:
        """The worker ends (its input closed, it exits); answers not taken are dropped."""
        with contextlib.suppress(OSError):
            os.close(self._to_child)
        while self._alive:  # read to the end: a worker blocked writing an answer exits too
            self._receive()
        self._child.reap()
        self._from_child.close()

    # ------------------------------------------------------------ the pipe

    def _send(self, message: tuple, *, answered: bool) -> None:
        if answered:
            self._asked[self._tickets] = len(message[2])
        if not self._alive:
            return
        data = _frame(message)
        # what the worker has not read yet is at most what is unanswered: under the budget,
        # this write never waits (and the worker, blocked on its answers, never waits for it)
        while self._in_flight and self._in_flight_bytes + len(data) > REQUEST_BUDGET and self._alive:
            self._receive()
        try:
            _write_all(self._to_child, data)
        except OSError:  # the worker died (EPIPE)
            self._alive = False
            return
        self._in_flight.append((self._tickets if answered else 0, len(data)))
        self._in_flight_bytes += len(data)

    def _receive(self) -> None:
        try:
            answer = self._from_child.recv()
        except (EOFError, OSError):
            self._alive = False
            return
        self._answered += 1
        self._answers[self._answered] = answer
        # the requests up to this one are read by the worker: out of the pipe
        while self._in_flight:
            ticket, size = self._in_flight.popleft()
            self._in_flight_bytes -= size
            if ticket == self._answered:
                break


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# ------------------------------------------------------------ the worker's side


def serve(read_fd: int, write_fd: int) -> None:
    """The worker: requests in, one answer per chunk out, until its input ends."""
    incoming = Connection(read_fd, writable=False)
    outgoing = Connection(write_fd, readable=False)
    trees: dict[int, SourceTree | OSError] = {}
    seen: set[str] = set()  # contents whose bytes were sent
    while True:
        try:
            message = incoming.recv()
        except EOFError:
            break
        if message[0] == "tree":
            _, name, root, follow = message
            try:
                trees[name] = _own_tree(root, follow)
            except (OSError, SourceError) as e:
                trees[name] = e if isinstance(e, OSError) else OSError(errnos.EPERM, str(e))
        elif message[0] == "close":
            tree = trees.pop(message[1], None)
            if isinstance(tree, SourceTree):
                tree.close()
        else:
            _, name, rels = message
            outgoing.send([_read(trees.get(name), rel, seen) for rel in rels])
    outgoing.close()


def _own_tree(root: str, follow: bool) -> SourceTree:
    """The writer's tree, opened again here: its root was resolved there (a link given
    and followed is its target now), so a link found in its place now is refused."""
    tree = SourceTree(root, follow_symlinks=False)
    tree.follow = follow
    return tree


def _read(tree: SourceTree | OSError | None, rel: Rel, seen: set[str]) -> tuple:
    if tree is None:
        return ("err", errnos.EINVAL, "read ahead of a source it was not told of")
    try:
        if isinstance(tree, OSError):
            raise tree
        data = tree.read(rel)
    except OSError as e:
        return ("err", e.errno or errnos.EIO, e.strerror or str(e))
    got = read_of(data, keep=False)
    first = got.bid not in seen
    seen.add(got.bid)
    return ("ok", data if first else None, *got[1:])
