"""One archived message, byte for byte (``vaultctl show ITEM``): a read of mail, so scoped by
the caller's role (vault/access.py) and audited as ``mail.read`` before the bytes leave."""

from __future__ import annotations

from vault.access import MailScope
from vault.audit import record_audit
from vault.entries import Kind
from vault.recording import ensure_recordable


class ShowError(LookupError):
    """No such item, or its content is gone (the service answers it as 404)."""


def read_item(vault, scope: MailScope, item: str) -> tuple[dict, bytes]:
    """The catalog row of ``item`` and its bytes (hash-verified on read). Forbidden outside
    ``scope``; ShowError for an unknown or purged item; StoreError for an unreadable blob."""
    row = vault.catalog.item(item)
    if row is None:
        raise ShowError(
            f"no item {item!r} in the archive (an item is MAILBOXID:UIDVALIDITY:UID, as "
            "'vaultctl search' and 'vaultctl log' print it)"
        )
    scope.require_item(vault, row, f"read {item}")
    if row["purged_at"]:
        raise ShowError(f"{item} was purged on {row['purged_at']}: its content is no longer archived")
    return row, vault.store.get(row["blob"])


def show_data(row: dict, via: str) -> dict:
    """The ``mail.read`` entry's data."""
    return {"via": via, "method": "show", "mailbox": row["mailbox"], "items": [row["item"]]}


def show(vault, scope: MailScope, item: str, *, actor: str | None = None) -> bytes:
    """``item``'s bytes, its read recorded first (by this process or the vault service)."""
    ensure_recordable(vault)
    row, data = read_item(vault, scope, item)
    data_entry = {**show_data(row, "cli"), **scope.caller.audit_fields()}
    record_audit(vault, Kind.MAIL_READ, item=item, actor=actor, data=data_entry)
    return data
