"""A notification receiver that does nothing with what Cyrus sends: the ceiling of live ingest.

Cyrus pays for its event notifications whoever listens: building each event, encoding it,
sending it, and in ``stream`` mode waiting for the answer. This is the cheapest listener that
keeps Cyrus going (bench/ingest_bench.py's ``socket-null`` and ``stream-null`` modes): on a
datagram socket it reads and drops each datagram; on a ``dlist:`` stream socket it reads each
connection's frame (the dealer's own parser, vault/ingest/cyrus/notify.py) and answers
``OK NIL`` at once, with nothing journalled, synced or shipped. What vault's dealer costs Cyrus
beyond what this costs is the dealer's own share.

    python -m vault.testing.null_receiver socket|stream PATH [--owner cyrus]

It says ``null receiver ready`` on stderr once it listens, and on SIGTERM how many
notifications it took (``received N``), then exits.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import socket
import sys

from vault.ingest.cyrus.notify import OK_REPLY, DlistFrameParser

_RECEIVED = [0]


def _listen(kind: int, path: str, owner: str | None) -> socket.socket:
    if os.path.lexists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(path)
    if owner:
        user = pwd.getpwnam(owner)
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o660)
    return sock


def _datagrams(sock: socket.socket) -> None:
    while True:
        sock.recv(1 << 20)
        _RECEIVED[0] += 1


def _stream(sock: socket.socket) -> None:
    sock.listen(1024)
    while True:
        conn, _ = sock.accept()
        with conn:
            parser = DlistFrameParser()
            while True:
                data = conn.recv(256 * 1024)
                if not data:
                    break
                frames = parser.feed(data)
                for _ in frames:
                    conn.sendall(OK_REPLY)
                _RECEIVED[0] += len(frames)
                if parser.error is not None or (frames and not parser.pending):
                    break  # one frame per connection, as Cyrus sends


def _stop(_signum, _frame) -> None:
    print(f"received {_RECEIVED[0]}", file=sys.stderr, flush=True)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("socket", "stream"))
    ap.add_argument("path")
    ap.add_argument("--owner", help="the user Cyrus runs as: owns the socket")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    kind = socket.SOCK_DGRAM if args.mode == "socket" else socket.SOCK_STREAM
    sock = _listen(kind, args.path, args.owner)
    print("null receiver ready", file=sys.stderr, flush=True)
    (_datagrams if args.mode == "socket" else _stream)(sock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
