"""Restore into a live IMAP server: APPEND each message with its flags and internal date.

Target spec: ``imap://USER[:PASSWORD]@HOST[:PORT]/FOLDER`` (``imaps://`` for TLS, port 993).
The password may instead come from the VAULT_IMAP_PASSWORD environment variable, so it
need not appear in a process listing. The folder is created when missing.
"""

from __future__ import annotations

import imaplib
import os
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from vault.model import SYSTEM_FLAGS


class ImapTargetError(Exception):
    pass


def _quote_mailbox(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapTarget:
    def __init__(self, spec: str):
        url = urlsplit(spec)
        if url.scheme not in ("imap", "imaps") or not url.hostname or not url.username:
            raise ImapTargetError(f"not an IMAP target: {spec!r} (imap://USER@HOST[:PORT]/FOLDER)")
        self.folder = unquote(url.path.lstrip("/")) or "INBOX"
        password = unquote(url.password) if url.password else os.environ.get("VAULT_IMAP_PASSWORD")
        if password is None:
            raise ImapTargetError(f"{spec}: no password (put it in the URL or VAULT_IMAP_PASSWORD)")
        port = url.port or (993 if url.scheme == "imaps" else 143)
        try:
            cls = imaplib.IMAP4_SSL if url.scheme == "imaps" else imaplib.IMAP4
            self.imap = cls(url.hostname, port, timeout=30)
            self.imap.login(unquote(url.username), password)
        except (OSError, imaplib.IMAP4.error) as e:
            raise ImapTargetError(f"{url.scheme}://{url.hostname}:{port}: {e}") from None
        typ, _ = self.imap.select(_quote_mailbox(self.folder))
        if typ != "OK":
            typ, data = self.imap.create(_quote_mailbox(self.folder))
            if typ != "OK":
                raise ImapTargetError(f"cannot create folder {self.folder!r}: {data}")

    def add(self, data: bytes, flags, internal_date: datetime | None, uid: int | None = None) -> None:
        # \Recent cannot be set by a client, and servers reject unknown system flags.
        allowed = [f for f in flags if not f.startswith("\\") or f in SYSTEM_FLAGS]
        when = internal_date or datetime.now(UTC)
        typ, resp = self.imap.append(
            _quote_mailbox(self.folder),
            "(" + " ".join(allowed) + ")" if allowed else None,
            imaplib.Time2Internaldate(when),
            data,
        )
        if typ != "OK":
            raise ImapTargetError(f"APPEND to {self.folder!r} refused: {resp}")

    def close(self) -> None:
        try:
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
