"""Small pieces of the on-disk mail formats shared by importers and restore targets."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from vault.model import normalise_flags

# Maildir info letters (https://cr.yp.to/proto/maildir.html); P ("passed") is $Forwarded in IMAP.
MAILDIR_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
LETTER_OF = {flag: letter for letter, flag in MAILDIR_LETTERS.items()}


def maildir_key(name: str) -> str:
    """The unique part of a Maildir file name: stable when flags change the name."""
    return name.split(":", 1)[0]


def maildir_flags(name: str) -> list[str]:
    _, sep, info = name.partition(":2,")
    if not sep:
        return []
    return list(_info_flags(info))


@functools.lru_cache(maxsize=256)  # a Maildir's files share a few infos
def _info_flags(info: str) -> tuple[str, ...]:
    return tuple(normalise_flags(MAILDIR_LETTERS[c] for c in info if c in MAILDIR_LETTERS))


def maildir_info(flags) -> str:
    """``:2,`` plus the letters of the flags Maildir can express, sorted as the spec asks."""
    return ":2," + "".join(sorted(LETTER_OF[f] for f in flags if f in LETTER_OF))


# ---------------------------------------------------------------- mbox

_FROM_QUOTED = re.compile(rb"^>*From ")
# "From sender Thu Aug 22 12:36:23 2002" (asctime; some writers add a zone or omit seconds)
FROM_LINE = re.compile(
    rb"^From \S*\s+(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2}) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))?"
    rb"(?: +[A-Z]{3,4}| +[+-]\d{4})? +(\d{4})(?: +[+-]\d{4})?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"], 1
    )
}


def parse_from_line(line: bytes) -> datetime | None:
    """The date of a real From_ separator line (UTC), or None when the line is not one."""
    m = FROM_LINE.match(line.rstrip(b"\r\n"))
    if not m:
        return None
    mon, day, hh, mm, ss, year = m.groups()
    try:
        return datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss or 0), tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def from_line(when: datetime | None, sender: str = "MAILER-DAEMON") -> bytes:
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return f"From {sender} {when.strftime('%a %b %e %H:%M:%S %Y')}\n".encode()


def mboxrd_quote(data: bytes) -> bytes:
    """Add one '>' to every line that begins with optional '>'s then "From "."""
    if b"From " not in data:
        return data
    return b"".join(
        b">" + line if _FROM_QUOTED.match(line) else line for line in data.splitlines(keepends=True)
    )


def mboxrd_unquote(data: bytes) -> bytes:
    if b">From " not in data:
        return data
    return b"".join(
        line[1:] if line.startswith(b">") and _FROM_QUOTED.match(line[1:]) else line
        for line in data.splitlines(keepends=True)
    )


_STATUS = re.compile(rb"^(X-Status|Status|X-Keywords):[ \t]*([^\r\n]*)", re.I | re.M)
_STATUS_LETTERS = {
    ord("R"): "\\Seen",
    ord("A"): "\\Answered",
    ord("F"): "\\Flagged",
    ord("D"): "\\Deleted",
    ord("T"): "\\Draft",
}


def mbox_flags(headers: bytes) -> list[str]:
    """Flags from the Status / X-Status / X-Keywords headers mail clients write into mboxes."""
    flags = []
    for name, value in _STATUS.findall(headers):
        if name.lower() == b"x-keywords":
            flags += [w for w in value.decode("utf-8", "replace").replace(",", " ").split()]
        else:
            flags += [_STATUS_LETTERS[c] for c in value if c in _STATUS_LETTERS]
    return normalise_flags(flags)


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)


def message_id_of(data: bytes) -> str | None:
    """The Message-ID header's <id> (folded or not) from the header block, or None."""
    end = data.find(b"\n\n")
    if end < 0:
        end = data.find(b"\n\r\n")
    if end < 0:
        end = len(data)
    # the first line the pattern matches, found as its search would (a case-insensitive
    # search is slow): each line that starts with the name in any case, tried in order
    lower = data[:end].lower()
    at = 0 if lower.startswith(b"message-id:") else lower.find(b"\nmessage-id:") + 1
    while at >= 0:
        if at > 0 or lower.startswith(b"message-id:"):
            match = _MESSAGE_ID.match(data, at, end)
            if match:
                return match.group(1).decode("ascii", "replace")
        found = lower.find(b"\nmessage-id:", at)
        at = found + 1 if found >= 0 else -1
    return None
