"""What the broker accepts: events only on the event wire, and from workers only what each
event causes. The committer trusts no worker (docs/architecture.md 1.2, "The committer").

**The event wire** (the dealer router) carries Cyrus's event notifications and nothing
else (:func:`refusal`). An administrative request (a hold, a release, a sweep, an erasure,
an audit entry) reaches the vault service through its authenticated local API, never this
wire: an administrative ``vnd.vault.*`` event arriving on it, or an event whose id is not
the SHA-256 of its bytes (the id is the dedup key: a made-up one could shadow a real event),
is stored as a dead letter with the reason and handed to no worker.

**A worker's result** is checked against the job's own event before anything of it is
recorded (:class:`ResultCheck`), by :data:`RULES`, one row per handler of
vault/ingest/worker/handlers/ (a test keeps the two in step):

- only the entry kinds that event type causes (``Rule.kinds``, plus the folder's discovery
  when its handler may discover one); never a purge, an erasure, a hold, a four-eyes
  request or an audit entry (:data:`NEVER_FROM_WORKERS`);
- only for what the event names (``Rule.scope``): its mailboxID, the UID of its uri or the
  UIDs of its uidset (with the folder's UIDVALIDITY), the items of its folder (a delete),
  its session;
- each entry's time is the event's (or, for an event without one, the commit's) and its
  actor the event's user (or ``cyrus``), as the committer reads them: a worker's differing
  time, actor or ``data.event`` is a violation, not something to record.

A result that breaks any of these is refused whole: the job becomes a dead letter with the
reason and none of its entries is recorded.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass

from vault.entries import EntrySpec, Kind
from vault.ingest.broker.jobs import REFUSED
from vault.ingest.worker.handlers import ALIASES
from vault.ingest.worker.handlers.common import SERVER_ACTOR
from vault.ingest.worker.handlers.event import Event, EventError, ImapUrl, parse_uidset
from vault.ingest.worker.handlers.sessions import session_item
from vault.model import ItemId

ADMINISTRATIVE = "vnd.vault."  # our own event names: requests, which the wire never carries


class Invalid(ValueError):
    """A worker's result that its job's event does not account for: why."""


# what the items of an event's entries may be
UID = "the message of its uri"  # ;UID= of the uri, in its folder
UIDSET = "the messages of its uidset"
FOLDER = "its folder"  # the mailboxID itself
CONTENTS = "its folder and the messages in it"  # a delete expunges them all
NAMED = "the folder it names, or none"  # subscriptions and quota: by mailboxID or by name
SESSION = "its session"
NOTHING = "nothing"

FOLDER_KINDS = frozenset(
    {Kind.FOLDER_CREATED, Kind.FOLDER_RENAMED, Kind.FOLDER_DELETED, Kind.FOLDER_ACL, Kind.FOLDER_METADATA}
)
MESSAGE_KINDS = frozenset(
    {
        Kind.MESSAGE_APPENDED,
        Kind.MESSAGE_COPIED,
        Kind.MESSAGE_MOVED,
        Kind.MESSAGE_EXPUNGED,
        Kind.FLAGS_SET,
        Kind.FLAGS_CLEARED,
    }
)
NAMED_KINDS = frozenset(
    {
        Kind.FOLDER_SUBSCRIBED,
        Kind.FOLDER_UNSUBSCRIBED,
        Kind.QUOTA_CHANGED,
        Kind.QUOTA_EXCEEDED,
        Kind.QUOTA_WITHIN,
    }
)
SESSION_KINDS = frozenset({Kind.SESSION_LOGIN, Kind.SESSION_LOGOUT})
# handlers/common.py folder_of: a folder the archive has never seen, recorded before the event's entries
DISCOVERY = frozenset({Kind.FOLDER_CREATED, Kind.FOLDER_ACL, Kind.FOLDER_METADATA})


@dataclass(frozen=True)
class Rule:
    kinds: frozenset[str]
    scope: str
    discovers: bool = False  # the handler may first record a folder the archive lacks

    @property
    def allowed(self) -> frozenset[str]:
        return self.kinds | DISCOVERY if self.discovers else self.kinds


def _rule(scope: str, *kinds: str, discovers: bool = False) -> Rule:
    return Rule(frozenset(kinds), scope, discovers)


RULES: dict[str, Rule] = {
    # handlers/messages.py
    "MessageNew": _rule(UID, Kind.MESSAGE_APPENDED, discovers=True),
    "MessageAppend": _rule(UID, Kind.MESSAGE_APPENDED, discovers=True),
    "vnd.cmu.MessageCopy": _rule(UIDSET, Kind.MESSAGE_COPIED, discovers=True),
    "vnd.cmu.MessageMove": _rule(UIDSET, Kind.MESSAGE_MOVED, discovers=True),
    "MessageExpunge": _rule(UIDSET, Kind.MESSAGE_EXPUNGED, discovers=True),
    "MessageTrash": _rule(UIDSET, Kind.FLAGS_SET, discovers=True),
    "MessageRead": _rule(UIDSET, Kind.FLAGS_SET, discovers=True),
    # handlers/flags.py
    "FlagsSet": _rule(UIDSET, Kind.FLAGS_SET, discovers=True),
    "FlagsClear": _rule(UIDSET, Kind.FLAGS_CLEARED, discovers=True),
    # handlers/mailboxes.py
    "MailboxCreate": _rule(FOLDER, Kind.FOLDER_CREATED, Kind.FOLDER_ACL, Kind.FOLDER_METADATA),
    "MailboxRename": _rule(
        FOLDER, Kind.FOLDER_RENAMED, Kind.FOLDER_ACL, Kind.FOLDER_METADATA, discovers=True
    ),
    "MailboxDelete": _rule(CONTENTS, Kind.MESSAGE_EXPUNGED, Kind.FOLDER_DELETED),
    "AclChange": _rule(FOLDER, Kind.FOLDER_ACL, Kind.FOLDER_METADATA, discovers=True),
    "MailboxSubscribe": _rule(NAMED, Kind.FOLDER_SUBSCRIBED),
    "MailboxUnSubscribe": _rule(NAMED, Kind.FOLDER_UNSUBSCRIBED),
    "QuotaChange": _rule(NAMED, Kind.QUOTA_CHANGED),
    "QuotaExceed": _rule(NAMED, Kind.QUOTA_EXCEEDED),
    "QuotaWithin": _rule(NAMED, Kind.QUOTA_WITHIN),
    "MailboxModseq": _rule(NOTHING),
    # handlers/sessions.py
    "Login": _rule(SESSION, Kind.SESSION_LOGIN),
    "Logout": _rule(SESSION, Kind.SESSION_LOGOUT),
}

_EVERY_KIND = frozenset(v for k, v in vars(Kind).items() if k.isupper() and isinstance(v, str))
NEVER_FROM_WORKERS = _EVERY_KIND - frozenset().union(*(r.allowed for r in RULES.values()))
"""Kinds no event causes: purges, erasures, holds, sweeps, four-eyes requests, audit entries,
imports, reconciliation. Only the vault service's own operations record them."""


# ---------------------------------------------------------------- the event wire


def refusal(event_id: str, claimed_id: str, name: str | None) -> str | None:
    """Why the dealer router must not queue an event (stored as a dead letter instead), or
    None. ``event_id`` is the SHA-256 of its bytes, ``claimed_id`` the id the sender gave."""
    if claimed_id != event_id:
        return f"{REFUSED}: the sender named it {claimed_id[:64]!r}, which is not the SHA-256 of its bytes"
    if name is not None and name.startswith(ADMINISTRATIVE):
        return (
            f"{REFUSED}: {name} is an administrative request, not an event; "
            "holds, releases, sweeps, erasures and audit entries go to the vault service's "
            "local API ('vaultctl' while 'vaultctl serve' runs), and nothing acts on this one"
        )
    return None


# ---------------------------------------------------------------- workers' results


class ResultCheck:
    """``check(job_id, raw, entries, catalog) -> entries`` as the committer records them, or
    :class:`Invalid`. ``resolve(login) -> directory id`` is the directory the workers use
    (``[ldap] url``), None without one."""

    def __init__(self, resolve: Callable[[str], str] | None = None):
        self.resolve = resolve

    def actors(self, user: str | None) -> set[str]:
        """Who a worker may say acted (handlers/common.py actor_of): the event's user, or
        its directory id (name-only, lower-cased, while the directory is unreachable)."""
        if not user:
            return {SERVER_ACTOR}
        if self.resolve is None:
            return {user}
        try:
            return {user, user.lower(), self.resolve(user)}
        except ValueError:
            return {user, user.lower()}

    def __call__(self, job_id: str, raw: bytes, entries: list[EntrySpec], catalog) -> list[EntrySpec]:
        try:
            fields = json.loads(raw)
            ev = Event(fields)
            time = ev.time
        except (ValueError, UnicodeDecodeError, EventError) as e:
            raise Invalid(f"its event cannot be read ({e}), yet a worker answered it") from None
        name = ALIASES.get(ev.name, ev.name)
        rule = RULES.get(name)
        if rule is None:
            raise Invalid(f"{ev.name!r} is no event type a worker handles, yet a worker answered it")
        scope = _Scope(ev, rule, entries, catalog)
        actors = self.actors(ev.user)
        out = []
        for n, spec in enumerate(entries, 1):
            shape = _malformed(spec)
            if shape:
                raise Invalid(f"entry {n} of {len(entries)}: {shape}")
            where = f"entry {n} of {len(entries)} ({spec.kind} {str(spec.item)[:100]})"
            if spec.kind in NEVER_FROM_WORKERS:
                raise Invalid(f"{where}: {spec.kind} is never a worker's to record")
            if spec.kind not in rule.allowed:
                raise Invalid(f"{where}: {ev.name} causes no {spec.kind}")
            scope.check(spec, where)
            if spec.time is not None and spec.time != time:
                raise Invalid(f"{where}: dated {spec.time}, not the event's {time or '(none: the commit)'}")
            if spec.actor not in actors:
                raise Invalid(
                    f"{where}: actor {spec.actor!r} is not the event's ({', '.join(sorted(actors))})"
                )
            if spec.data.get("event", job_id) != job_id:
                raise Invalid(f"{where}: names event {str(spec.data['event'])[:64]!r}, not its job")
            if spec.data.get("cyrus_event", ev.name) != ev.name:
                raise Invalid(f"{where}: says it came of {spec.data['cyrus_event']!r}, not {ev.name}")
            out.append(EntrySpec(spec.kind, spec.item, {**spec.data, "event": job_id}, time, spec.actor))
        return out


def _malformed(spec: EntrySpec) -> str | None:
    """What is wrong with an entry's shape as the protocol carries it, if anything."""
    if not isinstance(spec.kind, str) or len(spec.kind) > 64:
        return "its kind is not a kind"
    for what, value in (("item", spec.item), ("time", spec.time), ("actor", spec.actor)):
        if value is not None and (not isinstance(value, str) or len(value) > 1024):
            return f"its {what} is not a string (of at most 1024 characters) or null"
    if not isinstance(spec.data, dict):
        return "its data is not an object"
    return None


class _Scope:
    """What the entries of one event may be about, read from the event (and, for a folder
    the event names without its UIDVALIDITY, from the catalog or the folder's discovery)."""

    def __init__(self, ev: Event, rule: Rule, entries: list[EntrySpec], catalog):
        self.ev, self.rule, self.entries, self.catalog = ev, rule, entries, catalog
        self._url: ImapUrl | None = None
        self._uids: list[tuple[int, int]] | None = None
        self._lows: list[int] = []
        self._uidvalidity: int | None = None

    @property
    def url(self) -> ImapUrl:
        if self._url is None:
            self._url = self.ev.url
        return self._url

    def check(self, spec: EntrySpec, where: str) -> None:
        try:
            if spec.kind in FOLDER_KINDS:
                self._folder(spec, where)
            elif spec.kind in MESSAGE_KINDS:
                self._message(spec, where)
            elif spec.kind in SESSION_KINDS:
                if spec.item != session_item(self.ev.session):
                    raise Invalid(f"{where}: not the event's session {session_item(self.ev.session)}")
            elif spec.kind in NAMED_KINDS:
                self._named(spec, where)
            else:  # a kind some rule allows must have a scope here
                raise Invalid(f"{where}: no scope for {spec.kind}")
        except EventError as e:
            raise Invalid(f"{where}: the event does not name it ({e})") from None

    def _folder(self, spec: EntrySpec, where: str) -> None:
        if spec.item != self.ev.mailbox_id:
            raise Invalid(f"{where}: not the event's folder {self.ev.mailbox_id}")

    def _message(self, spec: EntrySpec, where: str) -> None:
        try:
            item = ItemId.parse(spec.item) if isinstance(spec.item, str) else None
        except ValueError:
            item = None
        if item is None:
            raise Invalid(f"{where}: not a message item")
        if item.mailbox_id != self.ev.mailbox_id:
            raise Invalid(f"{where}: not in the event's folder {self.ev.mailbox_id}")
        scope = self.rule.scope
        if scope == CONTENTS:  # a folder's delete: what the archive holds in it
            row = self.catalog.item(spec.item)
            if row is None or row["mailbox_id"] != item.mailbox_id:
                raise Invalid(f"{where}: no message of the folder in the archive")
            return
        if scope == UID:
            if item.uid != self.url.uid:
                raise Invalid(f"{where}: UID {item.uid} is not the event's {self.url.uid}")
        elif scope == UIDSET:
            if not self._in_uidset(item.uid):
                raise Invalid(f"{where}: UID {item.uid} is not in the event's uidset {self.ev.get('uidset')}")
        else:
            raise Invalid(f"{where}: {self.ev.name} names no message")
        expected = self._folder_uidvalidity()
        if item.uidvalidity != expected:
            raise Invalid(f"{where}: UIDVALIDITY {item.uidvalidity} is not the folder's {expected}")

    def _in_uidset(self, uid: int) -> bool:
        if self._uids is None:  # the ranges merged, in order (a uidset may hold a million UIDs)
            merged: list[tuple[int, int]] = []
            for lo, hi in sorted(parse_uidset(self.ev.text("uidset"))):
                if merged and lo <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
                else:
                    merged.append((lo, hi))
            self._uids, self._lows = merged, [lo for lo, _ in merged]
        i = bisect.bisect_right(self._lows, uid) - 1
        return i >= 0 and uid <= self._uids[i][1]

    def _folder_uidvalidity(self) -> int | None:
        """The uri's UIDVALIDITY, else the catalog's for the folder, else its discovery's."""
        if self._uidvalidity is None:
            self._uidvalidity = self.url.uidvalidity
        if self._uidvalidity is None:
            row = self.catalog.folder(self.ev.mailbox_id)
            if row is not None:
                self._uidvalidity = int(row["uidvalidity"])
        if self._uidvalidity is None:
            for e in self.entries:
                if (
                    e.kind == Kind.FOLDER_CREATED
                    and e.item == self.ev.mailbox_id
                    and isinstance(e.data, dict)
                ):
                    value = e.data.get("uidvalidity")
                    self._uidvalidity = value if isinstance(value, int) else None
                    break
        return self._uidvalidity

    def _named(self, spec: EntrySpec, where: str) -> None:
        if spec.item is None:
            return
        named = self.ev.text("mailboxID", required=False)
        name = self.url.mailbox
        if spec.item != named and not (name and spec.item == self.catalog.folder_id(name)):
            raise Invalid(f"{where}: not the folder the event names ({named or name or 'none'})")
