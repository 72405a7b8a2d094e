"""Mail logs into hop records: Postfix, Sendmail and Cyrus lines, any common syslog header.

A *hop* is one thing a mail program said about one message: received from a client, given a
Message-ID, queued, delivered or bounced to a recipient, handed to the next queue ID. Every
line becomes at most one ``Hop``; lines that are about no message (connects, statistics) are
*ignored*, lines that cannot be read are *unparsed*; both are counted by reason and never
raise. Headers understood: RFC 3164 (``Nov 22 12:57:03 host prog[pid]: ...``; the year is
inferred from a reference time, so a December line read in January is last year's), RFC 5424
(``<pri>1 2026-11-22T12:57:03Z host prog pid - - ...``) and ISO timestamps as rsyslog writes
them (``2026-11-22T12:57:03.123+00:00 host prog[pid]: ...``).

Speed matters (a busy relay logs millions of lines a day): one header regex, dispatch on the
program's last path component, one key=value scan.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from vault.model import format_time

MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_RFC3164 = re.compile(
    r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$"
)
_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$"
)
_RFC5424 = re.compile(r"^<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) \S+ (?:-|\[.*?\](?:\[.*?\])*) ?(.*)$")
_POSTFIX_QID = re.compile(r"^([0-9A-F]{6,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,20}): (.*)$")
_SENDMAIL_QID = re.compile(r"^([0-9A-Za-z]{8,20}): (.*)$")
_KV = re.compile(r"(\w+)=(<[^>]*>|\[[^\]]*\]|[^,\s]+(?: \[[^\]]*\])?)")
_QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]{6,20})")
_SESSION = re.compile(r"SESSIONID=<([^>]+)>")
_NDR = re.compile(r"^sender (?:non-delivery|delivery status|delay) notification: ([0-9A-Za-z]{6,20})")
_CYRUS_DELIVERED = re.compile(r"^Delivered: (<[^>]*>|\S+) to mailbox: (\S+)")
_DURATION = re.compile(r"^(?:(\d+)\+)?(\d\d):(\d\d):(\d\d)$")  # sendmail delay=[days+]HH:MM:SS

POSTFIX = {
    "smtpd",
    "cleanup",
    "qmgr",
    "pickup",
    "smtp",
    "lmtp",
    "local",
    "bounce",
    "defer",
    "error",
    "virtual",
    "pipe",
    "discard",
    "postsuper",
    "trace",
    "expire",
    "retry",
    "sendmail",
    "postdrop",
}
SENDMAIL = {"sendmail", "sm-mta", "sm-msp-queue"}
CYRUS = {"lmtpd", "lmtp", "imapd", "imap", "pop3d", "pop3", "lmtpunix"}


@dataclass
class Hop:
    host: str
    time: str  # vault time (UTC, fixed width)
    program: str  # e.g. postfix/lmtp
    queue_id: str | None = None
    message_id: str | None = None
    from_: str | None = None
    to: str | None = None
    relay: str | None = None
    status: str | None = None  # sent, bounced, deferred, expired, delivered, queued, removed, ...
    dsn: str | None = None
    delay: float | None = None
    size: int | None = None
    session_id: str | None = None  # Cyrus's LMTP SESSIONID=<...>
    next_queue_id: str | None = None  # "queued as X" downstream, or the bounce's own queue ID
    detail: str | None = None  # the status text in parentheses
    raw: str = ""
    seq: int = 0  # order of reading, once stored (orders hops logged in the same second)

    def key(self) -> tuple:
        return (self.host, self.time, self.program, self.raw)


@dataclass
class ParseStats:
    lines: int = 0
    hops: int = 0
    ignored: Counter = field(default_factory=Counter)  # about no message: by reason
    unparsed: Counter = field(default_factory=Counter)  # could not read: by reason

    def merge(self, other: ParseStats) -> None:
        self.lines += other.lines
        self.hops += other.hops
        self.ignored.update(other.ignored)
        self.unparsed.update(other.unparsed)


def _angle(value: str | None) -> str | None:
    if value is None:
        return None
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


class LineParser:
    """``parse(line) -> Hop | None``, counting every line in ``stats``. ``reference`` is the
    time the log was current (file mtime, now): it gives RFC 3164 lines their year.
    ``zone`` is the zone RFC 3164 times are in (syslog writes local time)."""

    def __init__(
        self, reference: datetime | None = None, zone: tzinfo | None = None, host: str | None = None
    ):
        self.reference = (reference or datetime.now(UTC)).astimezone(UTC)
        # the local zone: astimezone() always sets one (UTC only satisfies its Optional type)
        self.zone: tzinfo = zone or datetime.now().astimezone().tzinfo or UTC
        self.host = host  # overrides the header's host name (--host)
        self.stats = ParseStats()
        self._year_cache: dict[tuple[int, int], int] = {}
        self._last_stamp, self._last_time = "", ""

    # ------------------------------------------------------------ headers

    def _year(self, month: int, day: int) -> int:
        key = (month, day)
        year = self._year_cache.get(key)
        if year is None:
            ref = self.reference
            year = ref.year
            try:
                if datetime(year, month, day, tzinfo=UTC) > ref + timedelta(days=2):
                    year -= 1  # a date "in the future": last year's (December read in January)
            except ValueError:  # Feb 29 in a year without it: the previous leap year's
                year -= 1
            self._year_cache[key] = year
        return year

    def parse(self, line: str) -> Hop | None:
        self.stats.lines += 1
        line = line.rstrip("\r\n")
        if not line.strip():
            self.stats.ignored["empty line"] += 1
            return None
        try:
            header = self._header(line)
        except (ValueError, OverflowError) as e:
            self.stats.unparsed[f"bad timestamp: {e}"[:60]] += 1
            return None
        if header is None:
            self.stats.unparsed["no syslog header"] += 1
            return None
        when, host, tag, message = header
        try:
            hop = self._message(when, self.host or host, tag, message, line)
        except (ValueError, IndexError) as e:  # a shape we did not expect: count, never crash
            self.stats.unparsed[f"{tag}: {type(e).__name__}"[:60]] += 1
            return None
        if hop is not None:
            self.stats.hops += 1
        return hop

    def _header(self, line: str):
        c = line[0]
        if c.isalpha():
            m = _RFC3164.match(line)
            if not m:
                return None
            mon, day, hh, mm, ss, host, tag, _pid, msg = m.groups()
            stamp = line[:15]
            if stamp != self._last_stamp:  # a log has many lines per second: convert once
                month = MONTHS.get(mon)
                if month is None:
                    return None
                d = int(day)
                local = datetime(self._year(month, d), month, d, int(hh), int(mm), int(ss), tzinfo=self.zone)
                self._last_stamp, self._last_time = stamp, format_time(local.astimezone(UTC))
            return self._last_time, host, tag, msg
        if c.isdigit():
            m = _ISO.match(line)
            if not m:
                return None
            stamp, host, tag, _pid, msg = m.groups()
            return format_time(_iso(stamp, self.zone)), host, tag, msg
        if c == "<":
            m = _RFC5424.match(line)
            if not m:
                return None
            stamp, host, app, _procid, msg = m.groups()
            if msg.startswith("\ufeff"):
                msg = msg[1:]
            return format_time(_iso(stamp, self.zone)), host, app, msg
        return None

    # ------------------------------------------------------------ messages

    def _message(self, when: str, host: str, tag: str, message: str, line: str) -> Hop | None:
        base = tag.rsplit("/", 1)[-1]
        if "postfix" in tag:
            return self._postfix(when, host, tag, base, message, line)
        if base in SENDMAIL:
            return self._sendmail(when, host, tag, message, line)
        if base in CYRUS and not _POSTFIX_QID.match(message):  # Cyrus's lmtp, not Postfix's
            return self._cyrus(when, host, tag, base, message, line)
        if base in POSTFIX:  # a Postfix instance with its own syslog_name
            return self._postfix(when, host, tag, base, message, line)
        self.stats.ignored["not a mail program"] += 1
        return None

    def _hop(self, when, host, tag, line, **fields) -> Hop:
        return Hop(host=host, time=when, program=tag, raw=line, **fields)

    def _postfix(self, when, host, tag, base, message, line) -> Hop | None:
        m = _POSTFIX_QID.match(message)
        if not m:
            self.stats.ignored[f"{base}: no queue id"] += 1
            return None
        qid, rest = m.groups()
        if rest == "removed":
            return self._hop(when, host, tag, line, queue_id=qid, status="removed")
        ndr = _NDR.match(rest)
        if ndr:
            return self._hop(
                when, host, tag, line, queue_id=qid, status="bounce notice", next_queue_id=ndr.group(1)
            )
        detail = None
        paren = rest.find(" (")
        if paren >= 0 and "status=" in rest[:paren]:
            detail = _unparen(rest[paren + 2 :])
            rest = rest[:paren]
        kv = dict(_KV.findall(rest))
        if not kv:
            self.stats.ignored[f"{base}: no fields"] += 1
            return None
        hop = self._hop(when, host, tag, line, queue_id=qid, detail=detail)
        hop.message_id = _angle(kv.get("message-id") or kv.get("message_id"))
        if "message-id" in rest and hop.message_id is None:
            mid = rest.split("message-id=", 1)[1]
            hop.message_id = _angle(mid.strip())
        hop.from_ = _angle(kv.get("from"))
        hop.to = _angle(kv.get("to"))
        hop.relay = kv.get("relay") or kv.get("client")
        hop.dsn = kv.get("dsn")
        hop.status = kv.get("status") or (
            "received"
            if "client" in kv
            else "queued"
            if "from" in kv
            else "cleanup"
            if hop.message_id
            else None
        )
        if "delay" in kv:
            hop.delay = float(kv["delay"])
        if "size" in kv:
            hop.size = int(kv["size"])
        if detail:
            queued = _QUEUED_AS.search(detail)
            if queued:
                hop.next_queue_id = queued.group(1)
            session = _SESSION.search(detail)
            if session:
                hop.session_id = session.group(1)
        return hop

    def _sendmail(self, when, host, tag, message, line) -> Hop | None:
        m = _SENDMAIL_QID.match(message)
        if not m:
            self.stats.ignored["sendmail: no queue id"] += 1
            return None
        qid, rest = m.groups()
        detail = None
        if ", stat=" in rest:
            rest, _, stat = rest.partition(", stat=")
            word, _, detail = stat.partition(" (")
            detail = _unparen(detail) or None
            rest += f", stat={word}"
        kv = dict(_KV.findall(rest))
        if not kv:
            self.stats.ignored["sendmail: no fields"] += 1
            return None
        hop = self._hop(when, host, tag, line, queue_id=qid, detail=detail)
        hop.from_ = _angle(kv.get("from"))
        hop.to = _angle(kv.get("to"))
        hop.message_id = _angle(kv.get("msgid"))
        hop.relay = kv.get("relay")
        hop.dsn = kv.get("dsn")
        stat = kv.get("stat")
        hop.status = stat.lower() if stat else ("queued" if hop.from_ is not None else None)
        if "size" in kv:
            hop.size = int(kv["size"])
        if "delay" in kv:
            d = _DURATION.match(kv["delay"])
            if d:
                days, h, mi, s = d.groups()
                hop.delay = float(int(days or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + int(s))
        if detail:
            queued = _QUEUED_AS.search(detail)
            if queued:
                hop.next_queue_id = queued.group(1)
        return hop

    def _cyrus(self, when, host, tag, base, message, line) -> Hop | None:
        m = _CYRUS_DELIVERED.match(message)
        if not m:
            self.stats.ignored[f"cyrus {base}: not a delivery"] += 1
            return None
        mid, mailbox = m.groups()
        session = _SESSION.search(message)
        return self._hop(
            when,
            host,
            tag,
            line,
            message_id=_angle(mid),
            to=mailbox,
            status="delivered",
            session_id=session.group(1) if session else None,
        )


def _unparen(text: str) -> str:
    """The status text without the one ")" that closes it."""
    return text[:-1] if text.endswith(")") else text


def _iso(stamp: str, zone: tzinfo) -> datetime:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" ", "T", 1))
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(UTC)
