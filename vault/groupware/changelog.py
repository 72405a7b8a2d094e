"""The history of a groupware object in one folder, and of one message, from the archive's
catalog and ledger (docs/architecture.md, "Groupware and the web service").

**Revisions.** Every archived copy of a Kolab object (``message.appended`` / ``copied`` /
``moved`` of a message whose Subject is the object's UID) is a revision: ``APPEND`` (``MOVE``
when it was moved in). Kolab clients update an object by appending the new message and
deleting the old one: an expunge that leaves another copy of the object in the folder is part
of that update, not a revision of its own. An expunge that leaves none is a ``DELETE``
revision (its content is the last state). This holds whether the messages arrived live or by
``vaultctl import``: an import run records the new copy and then the expunge of the old one.

**Revision numbers** are Bonnie's: deciseconds since 2014-01-01T00:00Z of the revision's
ledger time. Two revisions of one object within the same decisecond (a fast import) would
share a number, so a revision is always at least one more than the one before it: numbers
increase strictly along an object's history, and every client sees the same ones (the
ledger's history never changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from vault.entries import CONTENT_KINDS, Kind
from vault.model import ItemId, parse_time

EPOCH = datetime(2014, 1, 1, tzinfo=UTC)
APPEND, MOVE, DELETE = "APPEND", "MOVE", "DELETE"
RECEIVE, READ, FLAGSET, FLAGCLEAR = "RECEIVE", "READ", "FLAGSET", "FLAGCLEAR"


def revision_number(time: str) -> int:
    """Deciseconds since 2014-01-01T00:00Z (Bonnie's revision numbers)."""
    delta = parse_time(time) - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10 + delta.microseconds // 100_000


def api_date(time: str) -> str:
    return parse_time(time).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class People:
    """Who did it, as Bonnie shows it: ``"CN <email>"``; the directory's display name and
    first address when ``[ldap] url`` is set and it knows the name, else the name itself (with
    ``[groupware] default_domain`` added to a bare login for the address)."""

    def __init__(self, config):
        self.config = config
        self._cache: dict[str, str] = {}

    def render(self, name: str | None) -> str:
        name = (name or "unknown").strip()
        if name not in self._cache:
            self._cache[name] = self._lookup(name)
        return self._cache[name]

    def _lookup(self, name: str) -> str:
        display, mail = name, name
        if self.config["ldap"]["url"]:
            from vault.directory import LDAP, Directory

            directory = Directory.from_config(self.config)
            try:
                user = directory.resolve(name)
            finally:
                directory.close()
            if user.source == LDAP:
                display, mail = user.display_name or name, (user.mails[0] if user.mails else name)
        domain = self.config["groupware"]["default_domain"]
        if "@" not in mail and domain:
            mail = f"{mail}@{domain}"
        return f"{display} <{mail}>"


def _who(entry) -> str | None:
    """The person behind an entry: the IMAP user of a live event, else the entry's actor."""
    return (entry.data or {}).get("user") or entry.actor


@dataclass
class Revision:
    rev: int
    op: str
    time: str  # the ledger time
    user: str  # "CN <email>"
    item: str  # the archived copy holding this revision's content
    blob: str
    purged: bool

    @property
    def msguid(self) -> int:
        return ItemId.parse(self.item).uid

    def to_json(self, mailbox: str) -> dict:
        return {
            "rev": self.rev,
            "op": self.op,
            "date": api_date(self.time),
            "user": self.user,
            "mailbox": mailbox,
            "msguid": self.msguid,
        }


def _bare(uid: str) -> str:
    return uid[len("urn:uuid:") :] if uid.startswith("urn:uuid:") else uid


def object_rows(vault, objects, mailbox_id: str, kind: str, uid: str) -> list[dict]:
    """The folder's archived copies (catalog item rows) of object ``uid`` of type ``kind``."""
    rows = vault.catalog.items_in(mailbox_id)
    ids = objects.identities(rows, vault.store.get)
    want = (kind, _bare(uid))
    return [
        r for r in rows if (found := ids.get(r["blob"])) is not None and (found[0], _bare(found[1])) == want
    ]


def uid_of_message(vault, objects, mailbox_id: str, msguid: int) -> str | None:
    """The object UID of the folder's message with IMAP UID ``msguid`` (its latest copy)."""
    rows = [r for r in vault.catalog.items_in(mailbox_id) if r["uid"] == msguid]
    ids = objects.identities(rows, vault.store.get)
    found = [ids.get(r["blob"]) for r in rows]
    return next((f[1] for f in reversed(found) if f is not None), None)


def revisions(vault, rows: list[dict], people: People) -> list[Revision]:
    """The revisions of one object in one folder, oldest first, from its copies ``rows``."""
    steps = []
    for r in rows:
        steps.append((r["appended_seq"], "add", r))
        if r["expunged_seq"] is not None:
            steps.append((r["expunged_seq"], "del", r))
    steps.sort(key=lambda s: s[0])
    present: set[str] = set()
    out: list[Revision] = []
    for seq, what, row in steps:
        entry = vault.ledger.get(seq)
        if what == "add":
            present.add(row["item"])
            op = MOVE if entry.kind == Kind.MESSAGE_MOVED else APPEND
        else:
            present.discard(row["item"])
            if present:
                continue  # the old copy an update replaced: part of that revision
            op = DELETE
        rev = revision_number(entry.time)
        if out and rev <= out[-1].rev:
            rev = out[-1].rev + 1
        out.append(
            Revision(
                rev,
                op,
                entry.time,
                people.render(_who(entry)),
                row["item"],
                row["blob"],
                bool(row["purged_at"]),
            )
        )
    return out


def message_changelog(vault, item: str, people: People) -> list[dict]:
    """One message's history in its folder as Bonnie's ``mail.changelog`` lists it: RECEIVE
    (delivered) or APPEND, MOVE (moved in), DELETE (expunged), READ (``\\Seen`` set),
    FLAGSET / FLAGCLEAR (with the flags), each with its date and user."""
    out = []
    for seq in vault.catalog.log_seqs(item=item):
        e = vault.ledger.get(seq)
        data = e.data or {}
        change: dict = {}
        if e.kind in CONTENT_KINDS:
            if e.kind == Kind.MESSAGE_MOVED:
                op = MOVE
            elif e.kind == Kind.MESSAGE_APPENDED and data.get("cyrus_event") == "MessageNew":
                op = RECEIVE
            else:
                op = APPEND
        elif e.kind == Kind.MESSAGE_EXPUNGED:
            op = DELETE
        elif e.kind == Kind.FLAGS_SET:
            flags = data.get("flags") or []
            op = READ if flags == ["\\Seen"] else FLAGSET
            change["flags"] = flags
        elif e.kind == Kind.FLAGS_CLEARED:
            op, change["flags"] = FLAGCLEAR, data.get("flags") or []
        else:
            continue  # reconciliation's findings, purges: not a change a user made
        out.append({"op": op, "date": api_date(e.time), "user": people.render(_who(e)), **change})
    return out
