"""Event handlers, one per Cyrus event type, by Cyrus's own names (docs/architecture.md, "Live ingest").

``HANDLERS[name](event: dict, ctx: HandlerContext) -> list[EntrySpec]``; ``ALIASES`` maps the
spellings older tools used (Bonnie's) to Cyrus's. :func:`handle` looks a handler up and is
what a worker calls. Every handler raises ``Quarantine`` for a malformed event, a mailbox
unknown to the server or a spool file already gone, and ``Postpone`` for what may succeed
later (a Logout before its Login, the collector not answering).

Cyrus's events only: administrative requests (holds, sweeps, audit entries, reconciliations)
never come as events. What each handler may return is what the broker's committer accepts
from a worker for that event type (vault/ingest/broker/validate.py: RULES, kept in step with
this table by a test).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from vault.ingest.collector.client import CollectorError, CollectorRefused
from vault.ingest.context import Postpone, Quarantine
from vault.ingest.worker.handlers import flags, mailboxes, messages, sessions
from vault.ingest.worker.handlers.event import Event, EventError


def _guarded(handler: Callable) -> Callable:
    """Takes the event as a dict; turns parse errors and collector trouble into the
    worker's two outcomes."""

    @functools.wraps(handler)
    def handle(event: dict, ctx) -> list:
        try:
            return handler(Event(event), ctx)
        except EventError as e:
            raise Quarantine(
                f"bad {event.get('event', 'event') if isinstance(event, dict) else 'event'}: {e}"
            ) from None
        except CollectorRefused as e:
            raise Quarantine(f"collector refused: {e}") from None
        except CollectorError as e:
            raise Postpone(f"collector unavailable: {e}") from None

    return handle


HANDLERS: dict[str, Callable] = {
    name: _guarded(fn)
    for name, fn in {
        "MessageNew": messages.appended,
        "MessageAppend": messages.appended,
        "MessageExpunge": messages.expunged,
        "MessageTrash": messages.trashed,
        "MessageRead": messages.read,
        "vnd.cmu.MessageCopy": messages.copied,
        "vnd.cmu.MessageMove": messages.moved,
        "FlagsSet": flags.flags_set,
        "FlagsClear": flags.flags_cleared,
        "MailboxCreate": mailboxes.created,
        "MailboxRename": mailboxes.renamed,
        "MailboxDelete": mailboxes.deleted,
        "MailboxSubscribe": mailboxes.subscribed,
        "MailboxUnSubscribe": mailboxes.unsubscribed,
        "MailboxModseq": mailboxes.modseq,
        "AclChange": mailboxes.acl_changed,
        "QuotaChange": mailboxes.quota_changed,
        "QuotaExceed": mailboxes.quota_exceeded,
        "QuotaWithin": mailboxes.quota_within,
        "Login": sessions.login,
        "Logout": sessions.logout,
    }.items()
}

ALIASES: dict[str, str] = {
    "QuotaExceeded": "QuotaExceed",
    "MailboxUnsubscribe": "MailboxUnSubscribe",
    "MessageCopy": "vnd.cmu.MessageCopy",
    "MessageMove": "vnd.cmu.MessageMove",
}


def handler_for(name) -> Callable | None:
    if not isinstance(name, str):
        return None
    return HANDLERS.get(name) or HANDLERS.get(ALIASES.get(name, ""))


def handle(event, ctx) -> list:
    """Run the handler of ``event`` (a dict, as decoded from the notification's JSON)."""
    if not isinstance(event, dict):
        raise Quarantine(f"event is not a JSON object but {type(event).__name__}")
    handler = handler_for(event.get("event"))
    if handler is None:
        raise Quarantine(f"unknown event type {event.get('event')!r}")
    return handler(event, ctx)
