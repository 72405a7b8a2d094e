"""``vaultctl ls`` and ``vaultctl log``: the folders and changelogs a caller may see
(vault/access.py), for the CLI opening the home itself and for the vault service alike.
Neither reads message content, so neither is an audit entry; a refusal is."""

from __future__ import annotations

from vault.access import MailScope
from vault.identity import REVIEWER, Forbidden


class NotFound(LookupError):
    """No such folder or item (within what the caller may see)."""


def folders(vault, scope: MailScope, *, include_deleted: bool = False) -> list[dict]:
    """The catalog's folders (current name, mailboxID, messages present now) in ``scope``."""
    return [f for f in vault.catalog.folders(include_deleted=include_deleted) if scope.folder(f["name"])]


def changelog(vault, scope: MailScope, *, mailbox: str | None = None, item: str | None = None) -> list:
    """Every ledger entry about folder ``mailbox`` (any name it had) or ``item``, oldest
    first. The folder must be the caller's by the name asked for and by its name now; a
    reviewer sees only the entries of items their matters cover (and the folder's own).
    Items that are not messages (``session:<id>``) are the admins'."""
    if (mailbox is None) == (item is None):
        raise ValueError("give exactly one of mailbox or item")
    if mailbox is not None:
        action = f"read the changelog of {mailbox}"
        scope.require_folder(mailbox, action)
        mailbox_id = vault.catalog.folder_id(mailbox)
        if mailbox_id is None:
            raise NotFound(f"no folder named {mailbox!r} in the archive")
        scope.require_folder(vault.catalog.folder_name(mailbox_id) or mailbox, action)
        seqs = vault.catalog.log_seqs(mailbox_id=mailbox_id)
    else:
        action = f"read the changelog of item {item}"
        row = vault.catalog.item(item)
        if row is not None:
            scope.require_item(vault, row, action)
        elif not scope.everything:  # a session, or nothing: not a message of theirs
            raise Forbidden(scope.caller, action, "only admins read the changelog of what is not a message")
        seqs = vault.catalog.log_seqs(item=item)
        if not seqs:
            raise NotFound(f"no ledger entries for item {item!r}")
    entries = [vault.ledger.get(s) for s in seqs]
    if scope.role != REVIEWER or item is not None:
        return entries
    allowed: dict[str, bool] = {}

    def visible(entry) -> bool:
        if entry.item is None or ":" not in entry.item:  # the folder's own entries
            return True
        if entry.item not in allowed:
            row = vault.catalog.item(entry.item)
            allowed[entry.item] = row is not None and scope.item(vault, row)
        return allowed[entry.item]

    return [e for e in entries if visible(e)]
