"""Hand events to the broker as a dealer does (the dealer wire), and wait for the acks.

For what other processes need recorded while the broker's committer holds the vault:
reconciliation requests, audit entries. An ack means the broker persisted the job.
"""

from __future__ import annotations

import hashlib
import socket

import zmq

from vault.ingest.protocol import ACK, EVENT


class BrokerUnavailable(Exception):
    pass


def queue_with_broker(
    address: str, events: list[bytes], timeout: float = 10.0, origin: str | None = None
) -> list[str]:
    """Send events to the broker's dealer router (the dealer's wire) and wait for every ACK;
    returns their ids. Raises BrokerUnavailable naming what was not acknowledged."""
    pending = {hashlib.sha256(raw).hexdigest(): raw for raw in events}
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        for eid, raw in pending.items():
            sock.send_multipart([EVENT, eid.encode(), raw, (origin or socket.gethostname()).encode()])
        waiting = set(pending)
        while waiting and sock.poll(int(timeout * 1000)):
            frames = sock.recv_multipart()
            if len(frames) == 2 and frames[0] == ACK:
                waiting.discard(frames[1].decode(errors="replace"))
        if waiting:
            raise BrokerUnavailable(
                f"broker {address}: {len(waiting)} of {len(pending)} "
                f"events not acknowledged within {timeout:g} s"
            )
    finally:
        sock.close(0)
    return list(pending)
