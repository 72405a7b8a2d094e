"""Folder names as Kolab clients send them, mapped to the archive's, and who may read a folder.

libkolab names folders relative to the logged-in user, in the IMAP namespaces Kolab uses:

===============================  ==========================================================
``Calendar``, ``INBOX/Sub``       the user's own: ``user/<login>/Calendar``
``Other Users/<u>/<path>``        another user's: ``user/<u>/<path>``
``Shared Folders/<path>``         a shared folder: ``<path>`` (e.g. ``shared/Calendar``)
===============================  ==========================================================

``INBOX`` itself is ``user/<login>/INBOX`` when the archive has that name (imports name it so),
else ``user/<login>`` (Cyrus's own name for it). Logins with a domain follow Cyrus's
virtual-domain names (``user/jane/Calendar@example.org``), except in ``[web] default_domain``:
there ``jane@example.org`` is the archive's ``jane`` (``user/jane/Calendar``).

Reading (``may_read``): the end user's own folders, and folders whose archived ACL (the last
``folder.acl`` entry: live ingest and reconciliation record them; imports carry none) grants
them, ``anyone`` or ``anonymous`` the ``r`` right. A folder without an archived ACL is its
owner's alone.
"""

from __future__ import annotations

from dataclasses import dataclass

OTHER_USERS = "Other Users/"
SHARED_FOLDERS = "Shared Folders/"
_EVERYONE = ("anyone", "anonymous")


class NoSuchFolder(LookupError):
    pass


@dataclass(frozen=True)
class Namespace:
    """How one site's logins and folder names relate: ``default_domain`` is the domain whose
    users have no ``@domain`` in the archive's folder names."""

    default_domain: str = ""

    def canonical(self, login: str) -> str:
        """The login as the archive's folder names spell it: lower case, the default domain left out."""
        login = login.strip().lower()
        local, at, domain = login.rpartition("@")
        if at and self.default_domain and domain == self.default_domain.lower():
            return local
        return login

    def _user_root(self, login: str, path: str) -> str:
        """``user/<local>/<path>[@domain]`` for a canonical login."""
        local, at, domain = login.rpartition("@")
        if not at:
            local, domain = login, ""
        name = f"user/{local}" + (f"/{path}" if path else "")
        return f"{name}@{domain}" if domain else name

    def candidates(self, login: str, mailbox: str) -> list[str]:
        """The archive names ``mailbox`` (as libkolab sends it for ``login``) may stand for, in
        the order they are tried."""
        mailbox = mailbox.strip().strip("/")
        if not mailbox:
            raise NoSuchFolder("an empty folder name")
        if mailbox.startswith(OTHER_USERS):
            other, _, path = mailbox[len(OTHER_USERS) :].partition("/")
            if not other:
                raise NoSuchFolder(f"{mailbox!r}: no user after {OTHER_USERS!r}")
            return self._own(self.canonical(other), path)
        if mailbox.startswith(SHARED_FOLDERS):
            path = mailbox[len(SHARED_FOLDERS) :]
            _, at, domain = self.canonical(login).rpartition("@")
            return [f"{path}@{domain}", path] if at else [path]
        return self._own(self.canonical(login), mailbox)

    def _own(self, login: str, path: str) -> list[str]:
        if path.upper() == "INBOX" or not path:
            return [self._user_root(login, "INBOX"), self._user_root(login, "")]
        if path.upper().startswith("INBOX/"):
            path = path[len("INBOX/") :]  # Cyrus's altnamespace off: INBOX/Calendar
        return [self._user_root(login, path)]

    def owner_of(self, name: str) -> str | None:
        """The canonical login a folder of the archive belongs to (None: a shared folder)."""
        base, at, domain = name.rpartition("@")
        if not at or "/" in domain:
            base, domain = name, ""
        parts = base.split("/")
        if len(parts) < 2 or parts[0] != "user" or not parts[1]:
            return None
        return self.canonical(f"{parts[1]}@{domain}" if domain else parts[1])

    def user_relative(self, login: str, name: str) -> str:
        """The archive's ``name`` as libkolab would show it to ``login``."""
        owner = self.owner_of(name)
        base = name.rpartition("@")[0] if "@" in name and "/" not in name.rpartition("@")[2] else name
        parts = base.split("/")
        if owner is None:
            return SHARED_FOLDERS + base
        path = "/".join(parts[2:]) or "INBOX"
        if owner == self.canonical(login):
            return path
        return f"{OTHER_USERS}{owner.partition('@')[0] if '@' in owner else owner}/{path}"

    def may_read(self, login: str, name: str, acl: dict | None) -> bool:
        """Whether ``login`` may read the folder ``name`` whose archived ACL is ``acl``."""
        who = self.canonical(login)
        if self.owner_of(name) == who:
            return True
        for identifier, rights in (acl or {}).items():
            ident = identifier.strip().lower()
            if (ident in _EVERYONE or self.canonical(ident) == who) and "r" in str(rights):
                return True
        return False


def resolve(
    catalog, namespace: Namespace, login: str, mailbox: str, at: str | None = None
) -> tuple[str, str]:
    """(mailboxID, archive name) of the folder ``mailbox`` names for ``login`` (at time ``at``);
    NoSuchFolder when the archive has none of the names it may stand for."""
    for name in namespace.candidates(login, mailbox):
        mailbox_id = catalog.folder_id(name, at)
        if mailbox_id is not None:
            return mailbox_id, name
    raise NoSuchFolder(f"no folder {mailbox!r} for {login} in the archive")
