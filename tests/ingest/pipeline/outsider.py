"""A host on the LAN that holds no key anyone trusts (run inside its namespace by
test_two_hosts.py): it offers an event to the broker's dealer port and asks the collector for a
message, once without CURVE and once with a key of its own (and the servers' right public
keys), and prints as JSON what it got back. Hand-written ZeroMQ: no vault code.

    python -m tests.ingest.pipeline.outsider BROKER COLLECTOR BROKER_KEY COLLECTOR_KEY PUBLIC SECRET MAILBOX
"""

from __future__ import annotations

import hashlib
import json
import sys

import zmq

WAIT_MS = 3000


def _socket(kind: int, address: str, server_key: str, public: str | None, secret: str | None) -> zmq.Socket:
    sock: zmq.Socket = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if public and secret:
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public.encode())
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())
    sock.connect(address)
    return sock


def offer_event(address: str, server_key: str, public: str | None, secret: str | None) -> list[str]:
    raw = json.dumps(
        {"event": "vnd.vault.Audit", "kind": "hold.released", "actor": "general-counsel"}
    ).encode()
    eid = hashlib.sha256(raw).hexdigest().encode()
    sock = _socket(zmq.DEALER, address, server_key, public, secret)
    sock.send_multipart([b"EVENT", eid, raw, b"outsider"])
    got = [repr(f[:40]) for f in sock.recv_multipart()] if sock.poll(WAIT_MS) else []
    sock.close(0)
    return got


def fetch(address: str, server_key: str, public: str | None, secret: str | None, mailbox: str) -> list[str]:
    sock = _socket(zmq.REQ, address, server_key, public, secret)
    sock.send_multipart([b"FETCH", mailbox.encode(), b"1"])
    got = [repr(f[:40]) for f in sock.recv_multipart()] if sock.poll(WAIT_MS) else []
    sock.close(0)
    return got


def main(argv: list[str]) -> None:
    broker, collector, broker_key, collector_key, public, secret, mailbox = argv
    out = {}
    for who, pub, sec in (("keyless", None, None), ("unlisted", public, secret)):
        out[f"dealer port, {who}"] = offer_event(broker, broker_key, pub, sec)
        out[f"collector, {who}"] = fetch(collector, collector_key, pub, sec, mailbox)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
