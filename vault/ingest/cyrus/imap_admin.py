"""The collector's IMAP connection as the Cyrus admin: folder ids, ACLs and metadata.

Admins may GETACL and GETMETADATA on every mailbox without being granted read rights (they
may not SELECT it, which is why messages and flags come from the spool instead). One
connection is kept open and reopened once when it breaks, so the admin appears as one
session in the event stream, not one per request.
"""

from __future__ import annotations

import imaplib
import threading

from vault.ingest.cyrus import syntax as imap_syntax

imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))

UNIQUEID_ENTRY = "/shared/vendor/cmu/cyrus-imapd/uniqueid"
# Server bookkeeping that changes with every message: not folder state worth a ledger entry.
VOLATILE_METADATA = frozenset(
    {
        "/shared/vendor/cmu/cyrus-imapd/size",
        "/shared/vendor/cmu/cyrus-imapd/lastupdate",
        "/shared/vendor/cmu/cyrus-imapd/synccrcs",
        "/shared/vendor/cmu/cyrus-imapd/foldermodseq",
        "/shared/vendor/cmu/cyrus-imapd/annotsize",
        "/shared/vendor/cmu/cyrus-imapd/uniqueid",
        "/shared/vendor/cmu/cyrus-imapd/lastpop",
        "/shared/vendor/cmu/cyrus-imapd/hasalarms",
    }
)


_RESPONSE = {"GETMETADATA": "METADATA", "GETACL": "ACL", "LIST": "LIST", "SETMETADATA": "METADATA"}


class ImapAdminError(Exception):
    """The server could not be reached or refused the admin; transient from a caller's view."""


class NoSuchMailbox(Exception):
    pass


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapAdmin:
    def __init__(self, host: str, port: int, user: str, password: str, timeout: float = 30.0):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._imap is not None:
                try:
                    self._imap.logout()
                except (OSError, imaplib.IMAP4.error):
                    pass
                self._imap = None

    def _connect(self) -> imaplib.IMAP4:
        try:
            imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            imap.login(self.user, self.password)
        except (OSError, imaplib.IMAP4.error) as e:
            raise ImapAdminError(f"IMAP {self.host}:{self.port} as {self.user}: {e}") from None
        return imap

    def _command(self, name: str, *args: str) -> tuple[str, list, list]:
        """(status, tagged data, untagged data of the command's response); one reconnect on
        a broken connection."""
        with self._lock:
            for attempt in (1, 2):
                if self._imap is None:
                    self._imap = self._connect()
                try:
                    typ, data = self._imap._simple_command(name, *args)
                    untagged = self._imap.untagged_responses.pop(_RESPONSE[name], [])
                    self._imap.untagged_responses.clear()
                    return typ, data, untagged
                except (OSError, imaplib.IMAP4.abort) as e:
                    self._imap = None
                    if attempt == 2:
                        raise ImapAdminError(f"IMAP {self.host}:{self.port}: {e}") from None
                except imaplib.IMAP4.error as e:
                    raise ImapAdminError(f"IMAP {name} {' '.join(args)}: {e}") from None
        raise AssertionError("unreachable")

    def _checked(self, name: str, mailbox: str, *args: str) -> list:
        typ, data, untagged = self._command(name, quote(mailbox), *args)
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            if "does not exist" in text.lower() or "nonexistent" in text.lower():
                raise NoSuchMailbox(f"{mailbox}: {text}")
            raise ImapAdminError(f"{name} {mailbox}: {typ} {text}")
        return untagged

    def metadata(self, mailbox: str) -> dict[str, str]:
        """Every non-NIL shared entry of the mailbox (RFC 5464), uniqueid included."""
        untagged = self._checked("GETMETADATA", mailbox, "(DEPTH infinity)", "(/shared)")
        out: dict[str, str] = {}
        for response in _responses(untagged):
            # mailbox (entry value entry value ...)
            if len(response) == 2 and isinstance(response[1], list):
                pairs = response[1]
                for key, value in zip(pairs[::2], pairs[1::2]):
                    if isinstance(key, str) and isinstance(value, str):
                        out[key] = value
        return out

    def acl(self, mailbox: str) -> dict[str, str]:
        untagged = self._checked("GETACL", mailbox)
        out: dict[str, str] = {}
        for response in _responses(untagged):
            rest = response[1:]  # mailbox, then identifier rights pairs
            for who, rights in zip(rest[::2], rest[1::2]):
                if isinstance(who, str) and isinstance(rights, str):
                    out[who] = rights
        return out

    def uniqueid(self, mailbox: str) -> str | None:
        return self.metadata(mailbox).get(UNIQUEID_ENTRY)

    def set_metadata(self, mailbox: str, entry: str, value: str | None) -> str | None:
        """SETMETADATA one shared entry (None: remove it); None when done, else the server's
        refusal (Cyrus refuses a vendor entry it does not know: "Permission denied")."""
        typ, data, _ = self._command(
            "SETMETADATA", quote(mailbox), f"({entry} {'NIL' if value is None else quote(value)})"
        )
        if typ == "OK":
            return None
        return b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace") or typ

    def mailboxes(self) -> list[str]:
        """Every mailbox on the server (``LIST "" "*"`` as the admin, who sees them all),
        less those that cannot be selected (``\\Noselect``, ``\\NonExistent``)."""
        typ, data, untagged = self._command("LIST", '""', '"*"')
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise ImapAdminError(f"LIST: {typ} {text}")
        names = []
        for response in _responses(untagged):
            # (flags) delimiter name
            if len(response) != 3 or not isinstance(response[0], list) or not isinstance(response[2], str):
                continue
            flags = {f.lower() for f in response[0] if isinstance(f, str)}
            if flags & {"\\noselect", "\\nonexistent"}:
                continue
            names.append(response[2])
        return names


def folder_metadata(entries: dict[str, str]) -> dict[str, str]:
    """The entries that are folder state (comments, special use, folder type ...)."""
    return {k: v for k, v in sorted(entries.items()) if k not in VOLATILE_METADATA}


def _responses(untagged: list) -> list[list]:
    out = []
    for part in _group(untagged):
        try:
            out.append(imap_syntax.parse(imap_syntax.join_response(part)))
        except imap_syntax.SyntaxProblem:
            continue  # one unreadable line must not hide the others
    return out


def _group(untagged: list) -> list[list]:
    """imaplib flattens responses: a literal-bearing one is a tuple plus its closing bytes."""
    groups: list[list] = []
    pending: list = []
    for part in untagged:
        pending.append(part)
        if isinstance(part, bytes):
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    return groups
