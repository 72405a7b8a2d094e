"""Cyrus's sync log: the one parser of its lines, and the reader of a channel's log file.

With ``sync_log: 1`` and a channel in ``sync_log_channels`` (vault/ingest/dealer/cyrus_config.py
sets ``vault``), every Cyrus process that changes a mailbox or a user appends one line to
``<configdirectory>/sync/<channel>/log`` (under an fcntl lock, then fsync), whether anyone
reads it or not. Observed on 3.6.1::

    APPEND user.alice
    MAILBOX "user.bob.Pro jects"
    RENAME "user.bob.Pro jects" user.bob.Ren^amed
    SUB bob user.bob.Ren^amed
    RENAME user.bob.Ren^amed DELETED.user.bob.Ren^amed.6B0FB91A   (a delayed delete)

A word is an atom or a quoted string (``\\`` escapes ``"`` and ``\\``); mailbox names are
Cyrus's internal ones (``.`` the separator, ``^`` a dot in a name, ``domain!`` in front with
virtual domains). The kinds and what each names (sync_log.h): USER, UNUSER, META (sieve)
user; APPEND, MAILBOX, UNMAILBOX, ANNOTATION mailbox; RENAME old new; QUOTA root; SEEN and
SUB user mailbox.

The reader follows Cyrus's own protocol (sync_client's): rename ``log`` to ``log-run``, wait
for a writer that opened ``log`` before the rename (take its lock), process ``log-run``,
unlink it once done; a ``log-run`` left by a reader that died is processed first, before
``log`` is renamed again. Lines written meanwhile go to a new ``log``.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from vault.ingest.cyrus.spool import external_name

log = logging.getLogger(__name__)

# The channel vault's lines name (sync_log_channels), so its log is sync/vault/log.
CHANNEL = "vault"
# kind -> number of arguments
ARITY = {
    "USER": 1,
    "UNUSER": 1,
    "META": 1,
    "APPEND": 1,
    "MAILBOX": 1,
    "UNMAILBOX": 1,
    "ANNOTATION": 1,
    "QUOTA": 1,
    "RENAME": 2,
    "SEEN": 2,
    "SUB": 2,
}
MAX_LINE = 16384


class SyncLogError(ValueError):
    """A line that is not a sync log line."""


@dataclass(frozen=True)
class SyncLogLine:
    kind: str
    args: tuple[str, ...]


def _words(text: str) -> list[str]:
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            i += 1
            out = []
            while True:
                if i >= n:
                    raise SyncLogError("unterminated quoted string")
                c = text[i]
                if c == "\\":
                    if i + 1 >= n or text[i + 1] not in '"\\':
                        raise SyncLogError(f"bad escape at {i}")
                    out.append(text[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            if i < n and text[i] != " ":
                raise SyncLogError(f"no space after a quoted string at {i}")
            words.append("".join(out))
        else:
            j = text.find(" ", i)
            j = n if j < 0 else j
            atom = text[i:j]
            if '"' in atom:
                raise SyncLogError(f"quote inside a word at {i}")
            words.append(atom)
            i = j
    return words


def parse_line(line: str) -> SyncLogLine:
    """One line (without its newline) -> :class:`SyncLogLine`; SyncLogError otherwise."""
    if not isinstance(line, str) or len(line) > MAX_LINE:
        raise SyncLogError("line too long")
    if any(c in line for c in "\r\n\0"):
        raise SyncLogError("control character in a line")
    words = _words(line)
    if not words:
        raise SyncLogError("empty line")
    kind, args = words[0], tuple(words[1:])
    if kind not in ARITY:
        raise SyncLogError(f"unknown kind {kind[:20]!r}")
    if len(args) != ARITY[kind]:
        raise SyncLogError(f"{kind} takes {ARITY[kind]} argument(s), not {len(args)}")
    if any(not a for a in args):
        raise SyncLogError(f"{kind}: an empty name")
    return SyncLogLine(kind, args)


def _quote(word: str) -> str:
    if word and not any(c in word for c in ' "\\') and word.isprintable():
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(entry: SyncLogLine) -> str:
    """The line Cyrus would write (the inverse of :func:`parse_line`; tests and tools)."""
    return " ".join([entry.kind, *(_quote(a) for a in entry.args)])


def folder_name(internal: str) -> str:
    """The archive's name of an internal Cyrus name: ``user.bob.Ren^amed`` -> ``user/bob/Ren.amed``;
    with a virtual domain, ``example.org!user.bob`` -> ``user/bob@example.org``."""
    domain, bang, rest = internal.partition("!")
    if not bang:
        return external_name(internal)
    parts = external_name(rest).split("/")
    if len(parts) >= 2 and parts[0] == "user":
        parts[1] = f"{parts[1]}@{domain}"
        return "/".join(parts)
    return f"{external_name(rest)}@{domain}"


@dataclass
class SyncTargets:
    """What a batch of lines asks to reconcile: folder names, and users (all their folders)."""

    mailboxes: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    lines: int = 0
    ignored: int = 0  # SUB, QUOTA, META: nothing the archive keeps
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def targets(text: str) -> SyncTargets:
    """The targets of a log's text, each named once, in the order first named. Delayed-delete
    copies (``DELETED.…``) are left out: the name they were renamed from is the target."""
    out = SyncTargets()
    boxes: dict[str, None] = {}
    users: dict[str, None] = {}
    for n, raw in enumerate(text.split("\n"), 1):
        if not raw:
            continue
        out.lines += 1
        try:
            entry = parse_line(raw)
        except SyncLogError as e:
            out.problems.append(f"line {n}: {e}")
            continue
        if entry.kind in ("USER", "UNUSER"):
            users.setdefault(entry.args[0])
        elif entry.kind in ("SUB", "QUOTA", "META"):
            out.ignored += 1
        else:
            for name in entry.args[-1:] if entry.kind == "SEEN" else entry.args:
                if name.split("!", 1)[-1].startswith("DELETED."):
                    continue
                boxes.setdefault(folder_name(name))
    out.mailboxes, out.users = list(boxes), list(users)
    return out


# ================================================================ the reader


class SyncLogReader:
    """``<configdirectory>/sync/<channel>/``: :meth:`begin` -> (token, text) of the batch to
    process (``log-run``, renamed from ``log`` when there is none), :meth:`done` removes it."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.log = self.directory / "log"
        self.run = self.directory / "log-run"

    def begin(self) -> tuple[str | None, str]:
        if not self.run.exists():
            try:
                os.rename(self.log, self.run)
            except FileNotFoundError:
                return None, ""  # nothing logged since the last batch
        try:
            with open(self.run, "rb") as f:
                # a writer that opened "log" before the rename writes under its lock: wait for it
                fcntl.lockf(f, fcntl.LOCK_SH)
                data = f.read()
                st = os.fstat(f.fileno())
                fcntl.lockf(f, fcntl.LOCK_UN)
        except FileNotFoundError:
            return None, ""
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}", data.decode("utf-8", "surrogateescape")

    def done(self, token: str) -> bool:
        """Remove ``log-run`` if it is still the batch ``token`` named; False otherwise."""
        try:
            st = self.run.stat()
        except FileNotFoundError:
            return False
        if f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}" != token:
            return False
        self.run.unlink()
        return True
