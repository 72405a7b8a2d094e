"""The collector: runs on the Cyrus host and answers what workers and reconciliation need.

ZeroMQ ROUTER (clients use REQ), multipart frames (docs/architecture.md 1.2, 5):

- ``[FETCH, mailboxID, UID]`` -> ``[OK, bytes, json {internal_date, size}]``: the message
  exactly as stored in ``{partition}/uuid/a/b/<mailboxID>/<UID>.``, its internal date from
  the file's mtime (the third frame is an addition to the spec; readers of two frames still
  work).
- ``[FOLDER, name or mailboxID]`` -> ``[OK, json {mailbox_id, name, uidvalidity, acl,
  metadata, deleted, user_flags}]``.
- ``[ENUMERATE, name or mailboxID]`` -> ``[OK, json {mailbox_id, name, uidvalidity,
  highestmodseq, messages: [{uid, flags, internal_date, modseq, size}]}]``: the messages
  present now (expunged index records left out).
- Errors: ``[ERR, "<CODE>: text"]``, CODE one of ``NOMAILBOX`` (the server does not know the
  mailbox), ``GONE`` (the spool file is gone), ``BAD`` (malformed request), ``FAIL``
  (something on this host failed; worth retrying).

Messages, flags and UIDs come from the spool files (no IMAP session, so no side effects);
names are resolved to ids and metadata read over IMAP as the admin.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import zmq

from vault.ingest.cyrus.imap_admin import ImapAdmin, ImapAdminError, NoSuchMailbox, folder_metadata
from vault.ingest.cyrus.spool import (
    CyrusSpool,
    CyrusSpoolError,
    MailboxNotFound,
    MessageGone,
    valid_mailbox_id,
)
from vault.model import format_time

log = logging.getLogger(__name__)

NOMAILBOX, GONE, BAD, FAIL = "NOMAILBOX", "GONE", "BAD", "FAIL"
PASSWORD_ENV = "VAULT_COLLECTOR_PASSWORD"


# ================================================================ server side


class _Refusal(Exception):
    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code


class Collector:
    """The answers, without the transport: ``handle(frames) -> frames``."""

    def __init__(self, spool: CyrusSpool, admin: ImapAdmin | None = None):
        self.spool = spool
        self.admin = admin

    @classmethod
    def from_config(cls, config) -> Collector:
        c = config["collector"]
        spool = CyrusSpool.from_imapd_conf(c["imapd_conf"])
        admin = None
        if c["imap_admin"]:
            password = c["imap_password"] or os.environ.get(PASSWORD_ENV, "")
            admin = ImapAdmin(
                c["imap_host"], c["imap_port"], c["imap_admin"], password, timeout=c["timeout_seconds"]
            )
        return cls(spool, admin)

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()

    # ------------------------------------------------------------ dispatch

    def handle(self, frames: list[bytes]) -> list[bytes]:
        try:
            if not frames:
                raise _Refusal(BAD, "empty request")
            command, args = frames[0], frames[1:]
            if command == b"FETCH" and len(args) == 2:
                data, meta = self.fetch(_text(args[0]), _uid(args[1]))
                return [b"OK", data, json.dumps(meta).encode()]
            if command == b"FOLDER" and len(args) == 1:
                return [b"OK", json.dumps(self.folder(_text(args[0]))).encode()]
            if command == b"ENUMERATE" and len(args) == 1:
                return [b"OK", json.dumps(self.enumerate(_text(args[0]))).encode()]
            raise _Refusal(BAD, f"unknown request {command[:40]!r} with {len(args)} argument(s)")
        except _Refusal as e:
            return [b"ERR", str(e).encode()]
        except MessageGone as e:
            return [b"ERR", f"{GONE}: {e}".encode()]
        except (MailboxNotFound, NoSuchMailbox) as e:
            return [b"ERR", f"{NOMAILBOX}: {e}".encode()]
        except (CyrusSpoolError, ImapAdminError, OSError) as e:
            log.warning("collector request failed: %s", e)
            return [b"ERR", f"{FAIL}: {e}".encode()]

    # ------------------------------------------------------------ answers

    def fetch(self, mailbox_id: str, uid: int) -> tuple[bytes, dict]:
        data, internal_date = self.spool.read_message(mailbox_id, uid)
        return data, {"internal_date": internal_date, "size": len(data)}

    def resolve(self, name_or_id: str) -> str:
        """The mailboxID of a name or id the server knows."""
        if valid_mailbox_id(name_or_id):
            try:
                self.spool.data_dir(name_or_id)
                return name_or_id
            except MailboxNotFound:
                pass  # a one-word mailbox name: look it up below
        if self.admin is None:
            raise _Refusal(
                FAIL,
                f"cannot resolve mailbox name {name_or_id!r}: "
                "no IMAP admin configured ([collector] imap_admin)",
            )
        mailbox_id = self.admin.uniqueid(name_or_id)
        if not mailbox_id:
            raise _Refusal(NOMAILBOX, f"{name_or_id}: the server reports no uniqueid")
        return mailbox_id

    def folder(self, name_or_id: str) -> dict:
        mailbox_id = self.resolve(name_or_id)
        header = self.spool.header(mailbox_id)
        index = self.spool.index(mailbox_id)
        metadata = {}
        if self.admin is not None and not header.deleted:
            metadata = folder_metadata(self.admin.metadata(header.name))
        return {
            "mailbox_id": mailbox_id,
            "name": header.name,
            "uidvalidity": index.uidvalidity,
            "acl": header.acl,
            "metadata": metadata,
            "deleted": header.deleted,
            "user_flags": list(header.user_flags),
        }

    def enumerate(self, name_or_id: str) -> dict:
        mailbox_id = self.resolve(name_or_id)
        header = self.spool.header(mailbox_id)
        index = self.spool.index(mailbox_id)
        messages = [
            {
                "uid": r.uid,
                "flags": r.flags(header.user_flags),
                "internal_date": format_time(datetime.fromtimestamp(r.internal_date, UTC)),
                "modseq": r.modseq,
                "size": r.size,
            }
            for r in index.present
        ]
        return {
            "mailbox_id": mailbox_id,
            "name": header.name,
            "uidvalidity": index.uidvalidity,
            "highestmodseq": index.highestmodseq,
            "deleted": header.deleted,
            "messages": messages,
        }


def _text(frame: bytes) -> str:
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refusal(BAD, f"not UTF-8: {frame[:40]!r}") from None
    if not text or len(text) > 1000:
        raise _Refusal(BAD, "empty or over-long mailbox argument")
    return text


def _uid(frame: bytes) -> int:
    if not frame.isdigit() or len(frame) > 10 or not 0 < int(frame) < 1 << 32:
        raise _Refusal(BAD, f"not a UID: {frame[:20]!r}")
    return int(frame)


class CollectorServer:
    """A ROUTER socket in front of a Collector; requests are answered one at a time."""

    POLL_MS = 200

    def __init__(self, collector: Collector, bind: str, context: zmq.Context | None = None):
        self.collector = collector
        self.bind = bind
        self._context = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(bind)
        # with tcp://host:0 (or *), the port actually bound
        self.address = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def serve_forever(self) -> None:
        sock = self._socket
        try:
            while not self._stop.is_set():
                if not sock.poll(self.POLL_MS, zmq.POLLIN):
                    continue
                frames = sock.recv_multipart()
                # REQ peers: [identity, b"", request...]
                try:
                    split = frames.index(b"", 1)
                except ValueError:
                    continue  # not a REQ envelope: nothing we can answer
                envelope, request = frames[: split + 1], frames[split + 1 :]
                try:
                    reply = self.collector.handle(request)
                except Exception as e:  # a bug must cost one answer, not the collector
                    log.exception("collector request %r failed", request[:1])
                    reply = [b"ERR", f"{FAIL}: {type(e).__name__}: {e}".encode()]
                sock.send_multipart(envelope + reply, copy=False)
        finally:
            sock.close(0)

    def start(self) -> CollectorServer:
        self._thread = threading.Thread(target=self.serve_forever, name="collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# ================================================================ client side


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

    def __init__(self, address: str, timeout: float = 30.0, context: zmq.Context | None = None):
        self.address = address
        self.timeout_ms = int(timeout * 1000)
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None

    @classmethod
    def from_config(cls, config) -> CollectorClient:
        c = config["collector"]
        return cls(c["address"], timeout=c["timeout_seconds"])

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
            self._socket.connect(self.address)
        sock = self._socket
        sock.send_multipart(frames)
        if not sock.poll(self.timeout_ms, zmq.POLLIN):
            self.close()
            raise CollectorError(
                f"collector {self.address}: no answer within "
                f"{self.timeout_ms / 1000:g} s to {frames[0].decode()}"
            )
        reply = sock.recv_multipart()
        if reply and reply[0] == b"OK" and len(reply) >= 2:
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
        reply = self._request([b"FETCH", mailbox_id.encode(), str(uid).encode()])
        meta = _json(reply[1]) if len(reply) > 1 else {}
        return FetchedMessage(reply[0], meta.get("internal_date"))

    def fetch(self, mailbox_id: str, uid: int) -> bytes:
        return self.fetch_message(mailbox_id, uid).data

    def folder(self, name_or_id: str) -> dict:
        return _json(self._request([b"FOLDER", name_or_id.encode()])[0])

    def mailbox_state(self, name_or_id: str) -> dict:
        """The whole ENUMERATE answer: mailbox id, name, UIDVALIDITY, messages."""
        return _json(self._request([b"ENUMERATE", name_or_id.encode()])[0])

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
