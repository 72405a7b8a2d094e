"""Every ledger entry kind, and the data the content entries carry (docs/architecture.md,
"The ledger").

The one home of the kinds: the importer, the live handlers, reconciliation, the catalog, the
indexer and verify take the kinds, the set of content-bearing kinds and the data of a
message entry from here, so the three writers of ``message.appended`` cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Kind:
    """Ledger entry kinds: the per-item changelog and the audit trail (docs/architecture.md, "The ledger").

    ``item`` on an entry is an ItemId string for message kinds and a mailboxID for
    folder kinds. Data fields per kind are documented where the catalog applies them
    (vault/store/catalog.py); content entries' data is built by :func:`message_data`.
    """

    MESSAGE_APPENDED = "message.appended"  # data: blob, size, internal_date, flags, mailbox, ...
    MESSAGE_EXPUNGED = "message.expunged"
    MESSAGE_COPIED = "message.copied"  # data as appended + source item
    MESSAGE_MOVED = "message.moved"
    FLAGS_SET = "flags.set"  # data: flags (added)
    FLAGS_CLEARED = "flags.cleared"  # data: flags (removed)
    FOLDER_CREATED = "folder.created"  # data: name, uidvalidity
    FOLDER_RENAMED = "folder.renamed"  # data: old, name
    FOLDER_DELETED = "folder.deleted"
    FOLDER_ACL = "folder.acl"
    FOLDER_METADATA = "folder.metadata"
    FOLDER_SUBSCRIBED = "folder.subscribed"  # data: mailbox (audit only: kept in the item log)
    FOLDER_UNSUBSCRIBED = "folder.unsubscribed"
    QUOTA_CHANGED = "quota.changed"  # data: mailbox, diskQuota, diskUsed, maxMessages, messages
    QUOTA_EXCEEDED = "quota.exceeded"
    QUOTA_WITHIN = "quota.within"
    SESSION_LOGIN = "session.login"
    SESSION_LOGOUT = "session.logout"
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    RETENTION_PURGED = "retention.purged"
    SWEEP_REQUESTED = "retention.sweep_requested"  # in older ledgers only: nothing writes it now
    SEARCH_RUN = "search.run"
    EXPORT_MADE = "export.made"
    RESTORE_DONE = "restore.done"
    IMPORT_RUN = "import.run"
    RECONCILE_DIFFERENCE = "reconcile.difference"
    ERASURE = "erasure.certified"  # the approval of an erasure request and its outcome, in one entry
    # Four eyes (vault/policy/approval.py): erasure and hold release take a request by one
    # admin and an approval by another. item: the request id. The approval is the outcome
    # entry itself (erasure.certified, hold.released, with data.request), so an approval
    # and its effect cannot be recorded apart.
    ERASURE_REQUESTED = "erasure.requested"  # data: request, custodian, query, reason, items, blobs
    ERASURE_WITHDRAWN = "erasure.withdrawn"  # data: request
    RELEASE_REQUESTED = "hold.release_requested"  # data: request, matter, reason, hold
    RELEASE_WITHDRAWN = "hold.release_withdrawn"  # data: request, matter
    ACCESS_REFUSED = "access.refused"  # data: action, login, roles, why; request (if any)
    # a read of archived mail by a client of the web service (vault/web/): item the folder's
    # mailboxID (or null); data: via (rpc, freebusy), method, api_user, user (the end user),
    # mailbox, and what was read (uid, revisions, msguid, items)
    MAIL_READ = "mail.read"
    # a reviewer's call on an item in a matter (vault/review.py, the web service's review
    # pages): item the ItemId; data: matter, tag (responsive, privileged, not_relevant, or
    # cleared to take it back), note (optional). The latest one per (matter, item) holds.
    REVIEW_TAGGED = "review.tagged"


AUDIT_TRAIL = frozenset(
    {
        Kind.SEARCH_RUN,
        Kind.EXPORT_MADE,
        Kind.RESTORE_DONE,
        Kind.HOLD_PLACED,
        Kind.HOLD_RELEASED,
        Kind.RETENTION_PURGED,
        Kind.ERASURE,
        Kind.IMPORT_RUN,
        Kind.ACCESS_REFUSED,
        Kind.ERASURE_REQUESTED,
        Kind.ERASURE_WITHDRAWN,
        Kind.RELEASE_REQUESTED,
        Kind.RELEASE_WITHDRAWN,
        Kind.MAIL_READ,
        Kind.REVIEW_TAGGED,
    }
)
"""What ``vaultctl audit`` lists: who read, exported, restored, held, purged, imported, asked
for or withdrew an erasure or a release, tagged an item in review, or was refused."""


CONTENT_KINDS = frozenset({Kind.MESSAGE_APPENDED, Kind.MESSAGE_COPIED, Kind.MESSAGE_MOVED})
"""Entries that put a message's content (a blob) into a folder."""

APPROVAL_KINDS = frozenset(
    {
        Kind.ERASURE_REQUESTED,
        Kind.ERASURE_WITHDRAWN,
        Kind.RELEASE_REQUESTED,
        Kind.RELEASE_WITHDRAWN,
        Kind.ACCESS_REFUSED,
    }
)
"""The four-eyes audit entries (requests, withdrawals, refusals): written through
vault/recording.py like the other audit entries, with the vault's writer (the vault
service's while it runs)."""


@dataclass
class EntrySpec:
    """One ledger entry to record: what a handler, reconciliation or an importer returns."""

    kind: str
    item: str | None
    data: dict = field(default_factory=dict)
    time: str | None = None
    actor: str | None = None


def message_data(
    *,
    blob: str,
    size: int,
    internal_date: str | None,
    flags: list[str],
    mailbox: str,
    message_id: str | None,
    **extra: object,
) -> dict:
    """The data of a content entry (one of :data:`CONTENT_KINDS`): the blob and what the
    catalog keeps per archived copy. ``extra`` names where it came from: ``origin`` and
    ``key`` for an import, ``service`` and ``emailid`` for a live event, ``source``,
    ``source_mailbox`` and ``source_uid`` for a copy or a move."""
    return {
        "blob": blob,
        "size": size,
        "internal_date": internal_date,
        "flags": flags,
        "mailbox": mailbox,
        "message_id": message_id,
        **extra,
    }
