"""Reading one Cyrus event notification: its IMAP URL, UID sets, time, user and session.

Cyrus 3.6 shapes (see tests/data/cyrus/cyrus-events-annotated.jsonl):
``uri`` is ``imap://host`` (Login), ``imap://host/user/alice`` (quota, subscriptions) or
``imap://host/user/alice;UIDVALIDITY=N`` with ``/;UID=N`` for one message (RFC 5092, the
mailbox name percent-encoded); ``oldMailboxID`` is such a URI too, not an id; ``uidset`` and
``vnd.cmu.oldUidset`` are IMAP sequence sets of UIDs (``1:3,7``).
Everything malformed raises :class:`EventError` with what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from vault.model import format_time, parse_time

MAX_UID = (1 << 32) - 1
MAX_EXPANDED_UIDS = 1_000_000  # far beyond any real event (Cyrus caps them at 64 KiB / 130 KB)


class EventError(ValueError):
    pass


# ---------------------------------------------------------------- IMAP URLs


@dataclass(frozen=True)
class ImapUrl:
    host: str
    mailbox: str | None = None  # decoded name, '/' separated (user/alice/Archive)
    uidvalidity: int | None = None
    uid: int | None = None


_URL = re.compile(r"^imap://(?:[^/@]*@)?(?P<host>[^/]*)(?:/(?P<path>.*))?$", re.S)


def _number(text: str, what: str, url: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) <= MAX_UID:
        raise EventError(f"{what} {text!r} in {url!r} is not a 32-bit number above 0")
    return int(text)


def parse_url(url) -> ImapUrl:
    if not isinstance(url, str):
        raise EventError(f"uri is not a string: {url!r}")
    m = _URL.match(url)
    if not m:
        raise EventError(f"not an imap:// URL: {url!r}")
    path = m.group("path")
    if not path:
        return ImapUrl(m.group("host"))
    first, *tail = path.split("/;")
    encoded, *params = first.split(";")
    try:
        mailbox = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise EventError(f"mailbox name in {url!r} is not UTF-8") from None
    if not mailbox:
        raise EventError(f"empty mailbox name in {url!r}")
    uidvalidity = uid = None
    for param in params:
        key, _, value = param.partition("=")
        if key.upper() == "UIDVALIDITY":
            uidvalidity = _number(value, "UIDVALIDITY", url)
    for part in tail:
        key, _, value = part.partition("=")
        if key.upper() == "UID":
            uid = _number(value.split("/")[0], "UID", url)
    return ImapUrl(m.group("host"), mailbox, uidvalidity, uid)


# ---------------------------------------------------------------- UID sets


def parse_uidset(text) -> list[tuple[int, int]]:
    """``1:3,7`` -> ``[(1, 3), (7, 7)]``: ranges as written, each low <= high."""
    if not isinstance(text, str) or not text:
        raise EventError(f"not a UID set: {text!r}")
    out = []
    for part in text.split(","):
        lo, sep, hi = part.partition(":")
        a = _number(lo, "UID", text)
        b = _number(hi, "UID", text) if sep else a
        out.append((min(a, b), max(a, b)))
    return out


def expand_uidset(ranges: list[tuple[int, int]], limit: int = MAX_EXPANDED_UIDS) -> list[int]:
    """Every UID in order of the set (duplicates kept out), at most ``limit`` of them."""
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if total > limit:
        raise EventError(f"UID set of {total} UIDs is larger than {limit}")
    seen: set[int] = set()
    out = []
    for lo, hi in ranges:
        for uid in range(lo, hi + 1):
            if uid not in seen:
                seen.add(uid)
                out.append(uid)
    return out


def uids(text) -> list[int]:
    return expand_uidset(parse_uidset(text))


# ---------------------------------------------------------------- the event


class Event:
    """One notification's fields, checked as they are read."""

    def __init__(self, fields: dict):
        if not isinstance(fields, dict):
            raise EventError("event is not a JSON object")
        name = fields.get("event")
        if not isinstance(name, str) or not name:
            raise EventError("event without an 'event' name")
        self.fields = fields
        self.name = name

    def get(self, key: str, default=None):
        return self.fields.get(key, default)

    def text(self, key: str, required: bool = True) -> str | None:
        value = self.fields.get(key)
        if isinstance(value, str) and value:
            return value
        if required:
            raise EventError(f"{self.name} event without {key!r}")
        return None

    @property
    def url(self) -> ImapUrl:
        return parse_url(self.text("uri"))

    @property
    def old_url(self) -> ImapUrl:
        return parse_url(self.text("oldMailboxID"))

    @property
    def mailbox_id(self) -> str:
        return self.text("mailboxID")

    @property
    def time(self) -> str | None:
        """The event's own timestamp as a vault time, or None (then: commit time)."""
        stamp = self.fields.get("timestamp")
        if stamp is None:
            return None
        try:
            return format_time(parse_time(str(stamp)))
        except ValueError:
            raise EventError(f"bad timestamp {stamp!r}") from None

    @property
    def user(self) -> str | None:
        return self.text("user", required=False)

    @property
    def session(self) -> str | None:
        return self.text("vnd.cmu.sessionId", required=False)

    def flag_names(self) -> list[str]:
        value = self.fields.get("flagNames") or ""
        if not isinstance(value, str):
            raise EventError(f"flagNames is not a string: {value!r}")
        return value.split()


def parse_acl(text) -> dict[str, str]:
    """``vnd.cmu.mailboxACL``: ``who\\trights\\t`` repeated -> {who: rights}."""
    if text is None or text == "":
        return {}
    if not isinstance(text, str):
        raise EventError(f"mailbox ACL is not a string: {text!r}")
    parts = text.split("\t")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) % 2:
        raise EventError(f"mailbox ACL {text!r} has an identifier without rights")
    return dict(zip(parts[::2], parts[1::2]))
