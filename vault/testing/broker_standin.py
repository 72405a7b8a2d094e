"""A stand-in for the broker's dealer router (vault/ingest/protocol.py), for tests and benchmarks.

It records every ``[EVENT, id, raw, origin]`` with the time it arrived and answers
``[ACK, id]`` when told to; it stores nothing. The real broker is vault/ingest/broker.py.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import zmq

from vault.curve.guard import ServerCurve, recv_allowed, secure, server_curve
from vault.testing.net import free_port


def curve_home(home: Path) -> ServerCurve:
    """Key pairs of a broker and of one dealer in ``home``, the dealer on the broker's
    allow-list: the CURVE of a stand-in that ``vaultctl --home HOME dealer serve`` ships to."""
    from vault.curve.keys import init_key, trust

    init_key(home, "broker")
    trust(home, "dealers", "bench-dealer", init_key(home, "dealer")[0])
    return broker_curve(home)


def broker_curve(home: Path) -> ServerCurve:
    """The CURVE of a broker listening on loopback with the keys in ``home``."""
    from vault.config import Config

    curve = server_curve(
        Config.defaults(home),
        section="broker",
        endpoint="tcp://127.0.0.1",
        domain="dealers",
        component="broker",
    )
    assert curve is not None  # keys made: CURVE, never plain
    return curve


class StandInBroker:
    """The broker's dealer router, as vault/ingest/protocol.py describes it: records every EVENT and
    answers ACK when ``acking`` (a bool, or a predicate over the event id)."""

    __test__ = False  # not a test class, whatever its users call it

    def __init__(self, port: int | None = None, acking=True, curve: ServerCurve | None = None):
        self.curve = curve  # the broker's CURVE (vault/curve/guard.py); None: plain
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.acking = acking
        self.received: list[tuple[str, bytes, bytes]] = []  # (event id, raw, origin)
        self.arrived: list[float] = []  # wall-clock arrival time of each received entry
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StandInBroker:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)

    def _should_ack(self, eid: str) -> bool:
        return self.acking(eid) if callable(self.acking) else bool(self.acking)

    def _run(self):
        ctx: zmq.Context = zmq.Context.instance()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        secure(sock, self.curve).bind(self.address)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(20):
                    continue
                frames = recv_allowed(sock, self.curve)
                if frames is None:
                    continue
                peer, body = frames[0], frames[1:]
                if len(body) != 4 or body[0] != b"EVENT":
                    self.problems.append(f"bad message {body[:2]!r}")
                    continue
                eid = body[1].decode()
                if eid != hashlib.sha256(body[2]).hexdigest():
                    self.problems.append(f"event id {eid} is not sha256 of the raw bytes")
                self.received.append((eid, body[2], body[3]))
                self.arrived.append(time.time())
                if self._should_ack(eid):
                    sock.send_multipart([peer, b"ACK", body[1]])
        finally:
            sock.close(0)

    def ids(self) -> list[str]:
        return [eid for eid, _, _ in self.received]

    def raws(self) -> list[bytes]:
        return [raw for _, raw, _ in self.received]
