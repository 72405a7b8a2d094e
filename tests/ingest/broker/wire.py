"""Hand-written peers of the broker, speaking its wire protocols (vault/ingest/protocol.py)
as anyone who reaches its ports could: a dealer on the dealer router, a worker on the
control and worker routers. No vault code drives them: each frame is written here.

Each takes a ``curve`` (vault/curve/guard.py ClientCurve): :func:`insider` for a peer holding a
key the broker trusts (the tests of what the broker validates), :func:`stranger` for a key it
does not know; None for a peer with no CURVE at all."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import zmq

from vault.curve.guard import ClientCurve, secure
from vault.curve.keys import key_pair, public_key
from vault.ingest import protocol as p


def insider(home: Path, component: str = "dealer") -> ClientCurve:
    """The key pair of this home's dealer or worker (on the broker's allow-list), the home's
    broker key: a peer whose key is legitimate, whatever it then sends."""
    public, secret = key_pair(home, component)
    server = public_key(home, "broker")
    assert server is not None, f"no broker key in {home}"
    return ClientCurve(public, secret, server, f"insider {component}")


def stranger(home: Path) -> ClientCurve:
    """A fresh key pair nobody trusted, with the broker's right public key."""
    public, secret = zmq.curve_keypair()
    server = public_key(home, "broker")
    assert server is not None, f"no broker key in {home}"
    return ClientCurve(public, secret, server, "stranger")


class FakeDealer:
    """``[EVENT, id, raw, origin]`` in, ``[ACK, id]`` back."""

    def __init__(self, address: str, curve: ClientCurve | None = None):
        self.sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        secure(self.sock, curve).connect(address)

    def send(self, raw: bytes, *, event_id: str | None = None, timeout: float = 10.0) -> str:
        """Send one event (by default under its true id, the SHA-256 of its bytes) and wait for
        its ACK; the id it was sent as."""
        eid = event_id or hashlib.sha256(raw).hexdigest()
        if not self.offer(raw, event_id=eid, timeout=timeout):
            raise AssertionError(f"no ACK for {eid[:12]} within {timeout} s")
        return eid

    def offer(self, raw: bytes, *, event_id: str | None = None, timeout: float = 10.0) -> bool:
        """Send one event; whether it was acked within ``timeout``."""
        eid = event_id or hashlib.sha256(raw).hexdigest()
        self.sock.send_multipart([p.EVENT, eid.encode(), raw, b"fake-dealer"])
        while self.sock.poll(int(timeout * 1000)):
            frames = self.sock.recv_multipart()
            if frames == [p.ACK, eid.encode()]:
                return True
        return False

    def close(self) -> None:
        self.sock.close(0)

    def __enter__(self) -> FakeDealer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FakeWorker:
    """READY for credits; takes a job (a TAKE with its payload; or ``fetch``: GET -> JOB on
    the worker router) and answers whatever it likes."""

    def __init__(self, control: str, work: str, name: str | None = None, curve: ClientCurve | None = None):
        self.name = (name or f"fake-{uuid.uuid4().hex[:8]}").encode()
        self.curve = curve
        self.control = self._connect(control, self.name)
        self.work = self._connect(work, self.name)

    def _connect(self, address: str, identity: bytes) -> zmq.Socket:
        sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, identity)
        secure(sock, self.curve).connect(address)
        return sock

    def ready(self, credits: int = 1) -> None:
        for _ in range(credits):
            self.control.send_multipart([p.READY])

    def take(self, timeout: float = 20.0, *, fetch: bool = False) -> tuple[str, dict]:
        """The next job the broker gives us: its id and its event (``fetch``: the event as the
        worker router hands it out again, which must be the TAKE's)."""
        assert self.control.poll(int(timeout * 1000)), f"no TAKE within {timeout} s"
        verb, job_id, raw = self.control.recv_multipart()
        assert verb == p.TAKE
        if fetch:
            self.work.send_multipart([p.GET, job_id])
            assert self.work.poll(int(timeout * 1000)), "no JOB"
            verb, got, again = self.work.recv_multipart()
            assert (verb, got, again) == (p.JOB, job_id, raw)
        return job_id.decode(), json.loads(raw)

    def done(self, job_id: str, entries: list[dict], *, sock: zmq.Socket | None = None) -> None:
        """``[DONE, job_id, {"entries": [...]}]``; entries as the protocol carries them
        (kind, item, data, time, actor)."""
        result = json.dumps({"entries": entries}).encode()
        (sock or self.control).send_multipart([p.DONE, job_id.encode(), result])

    def impostor(self, control: str) -> zmq.Socket:
        """A socket claiming to be our heartbeat socket ("<name>/hb")."""
        return self._connect(control, self.name + p.HEARTBEAT_SUFFIX)

    def close(self) -> None:
        self.control.close(0)
        self.work.close(0)
