"""A notification receiver that does nothing with what Cyrus sends: the ceiling of live ingest.

Cyrus pays for its event notifications whoever listens: building each event, encoding it,
sending it, and in ``stream`` mode waiting for the answer. This is the cheapest listener that
keeps Cyrus going, the reference of bench/ingest_bench.py's ``socket-null`` and ``stream-null``
modes and the sink of bench/cyrus_events_bench.py: on a datagram socket it reads and drops each
datagram; on a ``dlist:`` stream socket it reads each connection's frame (the dealer's own
parser, vault/ingest/cyrus/notify.py) and answers ``OK NIL`` at once. Nothing is journalled,
synced or shipped; it only counts the events by name, and their bytes. What vault's dealer
costs Cyrus beyond what this costs is the dealer's own share.

    python -m vault.testing.null_receiver socket|stream PATH [--owner cyrus] [--report FILE]

It says ``null receiver ready`` on stderr once it listens; on SIGTERM it says how many
notifications it took (``received N``), writes ``NAME COUNT BYTES`` lines to ``--report``, and
exits.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import socket
import sys

from vault.ingest.cyrus.notify import OK_REPLY, DlistFrameParser, WireError, decode_datagram

_COUNTS: dict[str, list[int]] = {}  # event name -> [count, bytes of its JSON]


def _event_name(raw: bytes) -> str:
    head = raw[:80]
    start = head.find(b'"event":"')
    if start < 0:
        return "?"
    start += 9
    return head[start : head.find(b'"', start)].decode(errors="replace")


def _seen(message: bytes) -> None:
    row = _COUNTS.setdefault(_event_name(message), [0, 0])
    row[0] += 1
    row[1] += len(message)


def _listen(kind: int, path: str, owner: str | None) -> socket.socket:
    if os.path.lexists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(path)
    if owner:
        user = pwd.getpwnam(owner)
        os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o666)  # lmtpd and imapd run as another user
    return sock


def _datagrams(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    while True:
        raw = sock.recv(256 * 1024)
        try:
            _seen(decode_datagram(raw).message)
        except WireError:
            _seen(raw)  # counted under "?" (or whatever name it shows)


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
                for note in frames:
                    conn.sendall(OK_REPLY)
                    _seen(note.message)
                if parser.error is not None or (frames and not parser.pending):
                    break  # one frame per connection, as Cyrus sends


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("socket", "stream"))
    ap.add_argument("path")
    ap.add_argument("--owner", help="the user Cyrus runs as: owns the socket (default: anyone may write)")
    ap.add_argument("--report", help="where to write NAME COUNT BYTES per event name at the end")
    args = ap.parse_args(argv)

    def stop(_signum, _frame) -> None:
        if args.report:
            with open(args.report, "w") as f:
                for name, (n, size) in sorted(_COUNTS.items()):
                    f.write(f"{name} {n} {size}\n")
        print(f"received {sum(n for n, _ in _COUNTS.values())}", file=sys.stderr, flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    kind = socket.SOCK_DGRAM if args.mode == "socket" else socket.SOCK_STREAM
    sock = _listen(kind, args.path, args.owner)
    print("null receiver ready", file=sys.stderr, flush=True)
    (_datagrams if args.mode == "socket" else _stream)(sock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
