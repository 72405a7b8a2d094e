"""Flag events: FlagsSet / FlagsClear carry flagNames and a uidset.

Cyrus reports some flag changes under other names (see messages.py): ``+FLAGS \\Deleted``
is MessageTrash, a first ``\\Seen`` is MessageRead, so ``+FLAGS (\\Seen \\Answered)`` arrives
as MessageRead plus FlagsSet.
"""

from __future__ import annotations

from vault.entries import Kind
from vault.ingest.worker.handlers.common import entry, folder_of
from vault.ingest.worker.handlers.event import Event, uids
from vault.model import normalise_flags


def flags_changed(kind: str, fixed: list[str] | None = None):
    """A handler recording ``kind`` with the event's flagNames (or ``fixed`` flags) for every
    UID in uidset."""

    def handle(ev: Event, ctx) -> list:
        flags = normalise_flags(fixed if fixed is not None else ev.flag_names())
        targets = uids(ev.text("uidset"))  # a malformed event is rejected before any lookup
        folder, entries = folder_of(ctx, ev)
        if not flags:
            return entries  # only \Recent, which no client sets or clears
        for uid in targets:
            entries.append(entry(ctx, ev, kind, folder.item(uid), {"flags": flags, "mailbox": folder.name}))
        return entries

    return handle


flags_set = flags_changed(Kind.FLAGS_SET)
flags_cleared = flags_changed(Kind.FLAGS_CLEARED)
