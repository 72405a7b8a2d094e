"""The collector's client, used on the vault host by workers and reconciliation: REQ to the
collector's ROUTER (requests and answers: vault/ingest/collector/frames.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import zmq

from vault.curve.guard import ClientCurve, client_curve, secure
from vault.ingest.collector.frames import (
    BAD,
    ENUMERATE,
    FETCH,
    FOLDER,
    GONE,
    LIST,
    NOEXPIRE,
    NOMAILBOX,
    OK,
    SYNCDONE,
    SYNCLOG,
)


class CollectorError(Exception):
    """The collector could not answer (unreachable, timed out, failed on its host):
    the request may succeed later."""


class CollectorRefused(Exception):
    """The collector answered, and the answer is no: retrying will not help."""


class MailboxUnknown(CollectorRefused):
    pass


class SpoolFileGone(CollectorRefused):
    pass


@dataclass(frozen=True)
class FetchedMessage:
    data: bytes
    internal_date: str | None  # vault time string


class CollectorClient:
    """REQ client; a timed-out socket is thrown away (REQ cannot send twice in a row)."""

    def __init__(
        self,
        address: str,
        timeout: float = 30.0,
        context: zmq.Context | None = None,
        *,
        curve: ClientCurve | None = None,
    ):
        self.address = address
        self.curve = curve  # None: plain, where the config allows it (vault/curve/guard.py)
        self.timeout_ms = int(timeout * 1000)
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None

    @classmethod
    def from_config(cls, config, address: str | None = None) -> CollectorClient:
        """The client of ``address`` (default ``[collector] address``) with CURVE: this home's
        worker key, the collector's public key (``[collector] server_key`` or the home's
        copy). CurveError when the link can be neither CURVE nor plain."""
        c = config["collector"]
        address = address or c["address"]
        curve = client_curve(
            config, section="collector", endpoint=address, component="worker", server="collector"
        )
        return cls(address, timeout=c["timeout_seconds"], curve=curve)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, frames: list[bytes]) -> list[bytes]:
        if self._socket is None:
            self._socket = self._context.socket(zmq.REQ)
            self._socket.setsockopt(zmq.LINGER, 0)
            secure(self._socket, self.curve).connect(self.address)
        sock = self._socket
        sock.send_multipart(frames)
        if not sock.poll(self.timeout_ms, zmq.POLLIN):
            self.close()
            raise CollectorError(
                f"collector {self.address}: no answer within "
                f"{self.timeout_ms / 1000:g} s to {frames[0].decode()}"
            )
        reply = sock.recv_multipart()
        if reply and reply[0] == OK and len(reply) >= 2:
            return reply[1:]
        text = reply[1].decode(errors="replace") if len(reply) >= 2 else repr(reply)
        code = text.split(":", 1)[0]
        if code == NOMAILBOX:
            raise MailboxUnknown(text)
        if code == GONE:
            raise SpoolFileGone(text)
        if code == BAD:
            raise CollectorRefused(text)
        raise CollectorError(f"collector {self.address}: {text}")

    def fetch_message(self, mailbox_id: str, uid: int) -> FetchedMessage:
        reply = self._request([FETCH, mailbox_id.encode(), str(uid).encode()])
        meta = _json(reply[1]) if len(reply) > 1 else {}
        return FetchedMessage(reply[0], meta.get("internal_date"))

    def fetch(self, mailbox_id: str, uid: int) -> bytes:
        return self.fetch_message(mailbox_id, uid).data

    def folder(self, name_or_id: str) -> dict:
        return _json(self._request([FOLDER, name_or_id.encode()])[0])

    def mailbox_state(self, name_or_id: str) -> dict:
        """The whole ENUMERATE answer: mailbox id, name, UIDVALIDITY, messages."""
        return _json(self._request([ENUMERATE, name_or_id.encode()])[0])

    def mailboxes(self) -> list[dict]:
        """Every mailbox on the server: mailbox_id, name, uidvalidity, highestmodseq, deleted."""
        return _json(self._request([LIST])[0])["mailboxes"]

    def noexpire(self, mailbox: str, value: str) -> dict:
        """Set the mailbox's noexpire_until (empty: remove): {supported, previous, reason}."""
        return _json(self._request([NOEXPIRE, mailbox.encode(), value.encode()])[0])

    def sync_log(self) -> dict:
        """The sync log's batch to reconcile: token (None: nothing logged), mailboxes, users."""
        return _json(self._request([SYNCLOG])[0])

    def sync_done(self, token: str) -> bool:
        """The batch ``token`` is reconciled and committed: the collector removes it."""
        return bool(_json(self._request([SYNCDONE, token.encode()])[0]).get("removed"))

    def enumerate(self, name_or_id: str) -> list[dict]:
        return self.mailbox_state(name_or_id)["messages"]


def _json(frame: bytes) -> dict:
    try:
        value = json.loads(frame)
    except ValueError as e:
        raise CollectorError(f"collector answered with bad JSON: {e}") from None
    if not isinstance(value, dict):
        raise CollectorError("collector answered with JSON that is not an object")
    return value
