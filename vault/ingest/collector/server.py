"""The collector: runs on the Cyrus host and answers what workers and reconciliation need
(requests and answers: vault/ingest/collector/frames.py).

Messages, flags and UIDs come from the spool files (no IMAP session, so no side effects);
names are resolved to ids and metadata read over IMAP as the admin. Only clients whose CURVE
key is on the home's ``collector`` allow-list get an answer (vault/curve/).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import zmq

from vault.curve.guard import ServerCurve, recv_allowed, secure, server_curve
from vault.ingest.collector.frames import (
    BAD,
    ENUMERATE,
    ERR,
    FAIL,
    FETCH,
    FOLDER,
    GONE,
    LIST,
    NOEXPIRE,
    NOEXPIRE_ENTRY,
    NOMAILBOX,
    OK,
    SYNCDONE,
    SYNCLOG,
)
from vault.ingest.cyrus import sync_log
from vault.ingest.cyrus.imap_admin import ImapAdmin, ImapAdminError, NoSuchMailbox, folder_metadata
from vault.ingest.cyrus.spool import (
    CyrusSpool,
    CyrusSpoolError,
    MailboxNotFound,
    MessageGone,
    read_imapd_conf,
    valid_mailbox_id,
)
from vault.model import format_time
from vault.secrets import secret

log = logging.getLogger(__name__)


class _Refusal(Exception):
    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code


class Collector:
    """The answers, without the transport: ``handle(frames) -> frames``."""

    def __init__(
        self, spool: CyrusSpool, admin: ImapAdmin | None = None, sync_log_dir: Path | str | None = None
    ):
        self.spool = spool
        self.admin = admin
        self.sync_log = sync_log.SyncLogReader(sync_log_dir) if sync_log_dir else None

    @classmethod
    def from_config(cls, config) -> Collector:
        c = config["collector"]
        spool = CyrusSpool.from_imapd_conf(c["imapd_conf"])
        configdirectory = read_imapd_conf(c["imapd_conf"]).get("configdirectory")
        sync_dir = Path(configdirectory) / "sync" / sync_log.CHANNEL if configdirectory else None
        admin = None
        if c["imap_admin"]:
            admin = ImapAdmin(
                c["imap_host"],
                c["imap_port"],
                c["imap_admin"],
                secret(config, "collector", "imap_password"),
                timeout=c["timeout_seconds"],
            )
        return cls(spool, admin, sync_dir)

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()

    # ------------------------------------------------------------ dispatch

    def handle(self, frames: list[bytes]) -> list[bytes]:
        try:
            if not frames:
                raise _Refusal(BAD, "empty request")
            command, args = frames[0], frames[1:]
            if command == FETCH and len(args) == 2:
                data, meta = self.fetch(_text(args[0]), _uid(args[1]))
                return [OK, data, json.dumps(meta).encode()]
            if command == FOLDER and len(args) == 1:
                return [OK, json.dumps(self.folder(_text(args[0]))).encode()]
            if command == ENUMERATE and len(args) == 1:
                return [OK, json.dumps(self.enumerate(_text(args[0]))).encode()]
            if command == LIST and not args:
                return [OK, json.dumps({"mailboxes": self.mailboxes()}).encode()]
            if command == NOEXPIRE and len(args) == 2:
                return [
                    OK,
                    json.dumps(self.noexpire(_text(args[0]), args[1].decode(errors="replace"))).encode(),
                ]
            if command == SYNCLOG and not args:
                return [OK, json.dumps(self.sync_log_batch()).encode()]
            if command == SYNCDONE and len(args) == 1:
                removed = self.sync_log is not None and self.sync_log.done(_text(args[0]))
                return [OK, json.dumps({"removed": removed}).encode()]
            raise _Refusal(BAD, f"unknown request {command[:40]!r} with {len(args)} argument(s)")
        except _Refusal as e:
            return [ERR, str(e).encode()]
        except MessageGone as e:
            return [ERR, f"{GONE}: {e}".encode()]
        except (MailboxNotFound, NoSuchMailbox) as e:
            return [ERR, f"{NOMAILBOX}: {e}".encode()]
        except (CyrusSpoolError, ImapAdminError, OSError) as e:
            log.warning("collector request failed: %s", e)
            return [ERR, f"{FAIL}: {e}".encode()]

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
            "highestmodseq": index.highestmodseq,
            "acl": header.acl,
            "metadata": metadata,
            "deleted": header.deleted,
            "user_flags": list(header.user_flags),
        }

    def noexpire(self, mailbox: str, value: str) -> dict:
        """Set (or with ``value`` empty remove) the mailbox's noexpire_until (frames.NOEXPIRE)."""
        if self.admin is None:
            raise _Refusal(FAIL, "cannot set annotations: no IMAP admin configured ([collector] imap_admin)")
        previous = self.admin.metadata(mailbox).get(NOEXPIRE_ENTRY)
        refused = self.admin.set_metadata(mailbox, NOEXPIRE_ENTRY, value or None)
        return {"supported": refused is None, "previous": previous, "reason": refused}

    def sync_log_batch(self) -> dict:
        """The sync log's batch to reconcile (see frames.SYNCLOG)."""
        if self.sync_log is None or not self.sync_log.directory.is_dir():
            return {"configured": False, "token": None, **sync_log.SyncTargets().to_json()}
        token, text = self.sync_log.begin()
        found = sync_log.targets(text)
        for problem in found.problems[:5]:
            log.warning("sync log %s: %s", self.sync_log.run, problem)
        return {"configured": True, "token": token, **found.to_json()}

    def mailboxes(self) -> list[dict]:
        """Every mailbox the admin lists, with its id and its CONDSTORE state."""
        if self.admin is None:
            raise _Refusal(FAIL, "cannot list mailboxes: no IMAP admin configured ([collector] imap_admin)")
        out = []
        for name in self.admin.mailboxes():
            try:
                mailbox_id = self.admin.uniqueid(name)
                if not mailbox_id:
                    continue
                header, index = self.spool.header(mailbox_id), self.spool.index(mailbox_id)
            except (NoSuchMailbox, MailboxNotFound):
                continue  # deleted between LIST and the look-up
            out.append(
                {
                    "mailbox_id": mailbox_id,
                    "name": header.name,
                    "uidvalidity": index.uidvalidity,
                    "highestmodseq": index.highestmodseq,
                    "deleted": header.deleted,
                }
            )
        return out

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

    def __init__(
        self,
        collector: Collector,
        bind: str,
        context: zmq.Context | None = None,
        *,
        curve: ServerCurve | None = None,
    ):
        self.collector = collector
        self.bind = bind
        self.curve = curve  # None: plain, where the config allows it (vault/curve/guard.py)
        self._context = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        secure(self._socket, curve).bind(bind)
        # with tcp://host:0 (or *), the port actually bound
        self.address = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    @classmethod
    def from_config(cls, collector: Collector, config, bind: str | None = None) -> CollectorServer:
        """On ``bind`` (default ``[collector] bind``) with CURVE: the home's collector key, its
        ``collector`` allow-list (CurveError where neither CURVE nor plain may serve)."""
        bind = bind or config["collector"]["bind"]
        curve = server_curve(
            config, section="collector", endpoint=bind, domain="collector", component="collector"
        )
        return cls(collector, bind, curve=curve)

    def serve_forever(self) -> None:
        sock = self._socket
        try:
            while not self._stop.is_set():
                if not sock.poll(self.POLL_MS, zmq.POLLIN):
                    continue
                frames = recv_allowed(sock, self.curve)
                if frames is None:
                    continue  # a client revoked since it connected: nothing for it
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
                    reply = [ERR, f"{FAIL}: {type(e).__name__}: {e}".encode()]
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
