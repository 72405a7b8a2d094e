"""Restore targets: where restored messages are written (docs/architecture.md 1.8)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from vault.mailformat import from_line, maildir_info, mboxrd_quote


class TargetError(Exception):
    pass


class MaildirTarget:
    """Messages go to cur/ with their flags in the info suffix and mtime = internal date."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            for sub in ("cur", "new", "tmp"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TargetError(f"{self.path}: cannot create Maildir: {e.strerror or e}") from None
        self.host = os.uname().nodename.replace("/", "_").replace(":", "_")
        self.count = 0

    def add(self, data: bytes, flags, internal_date: datetime | None, uid: int | None = None) -> Path:
        when = (internal_date or datetime.now(UTC)).timestamp()
        self.count += 1
        name = f"{int(when)}.V{uid or 0}I{self.count}.{self.host}"
        tmp = self.path / "tmp" / name
        final = self.path / "cur" / (name + maildir_info(flags))
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.utime(tmp, (when, when))
            os.rename(tmp, final)
        except OSError as e:
            raise TargetError(f"{final}: {e.strerror or e}") from None
        return final

    def close(self) -> None:
        pass


class MboxTarget:
    """mboxrd: From_ line, >From quoting, a blank line after every message.

    The one thing mbox cannot keep: a message that does not end in a newline gains one.
    ``mbox:-`` writes to standard output.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.stdout = str(path) == "-"
        if self.stdout:
            sys.stdout.flush()
            self.file = sys.stdout.buffer
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "ab")
        except OSError as e:
            raise TargetError(f"{self.path}: {e.strerror or e}") from None

    def add(self, data: bytes, flags, internal_date: datetime | None, uid: int | None = None) -> None:
        body = mboxrd_quote(data)
        if not body.endswith(b"\n"):
            body += b"\n"
        self.file.write(from_line(internal_date) + body + b"\n")

    def close(self) -> None:
        self.file.flush()
        if self.stdout:
            return
        os.fsync(self.file.fileno())
        self.file.close()


def open_target(spec: str):
    kind, sep, rest = spec.partition(":")
    if kind == "maildir" and sep and rest:
        return MaildirTarget(rest)
    if kind == "mbox" and sep and rest:
        return MboxTarget(rest)
    if kind in ("imap", "imaps") and rest.startswith("//"):
        from vault.restore.imap_target import ImapTarget, ImapTargetError

        try:
            return ImapTarget(spec)
        except ImapTargetError as e:
            raise TargetError(str(e)) from None
    raise TargetError(
        f"unknown restore target {spec!r}: use maildir:PATH, mbox:PATH or imap://USER@HOST/FOLDER"
    )


def to_stdout(spec: str) -> bool:
    """Whether the target is standard output (``mbox:-``): then reports go to stderr."""
    return spec == "mbox:-"


def folder_target(spec: str, folder: str) -> str:
    """Where one folder of a whole user's restore goes: ``maildir:DIR`` -> a Maildir at
    ``DIR/<folder>`` (``DIR/user/jane``, ``DIR/user/jane/Sent``), ``mbox:DIR`` -> the file
    ``DIR/<folder>.mbox``, ``mbox:-`` -> standard output, one mbox after the other."""
    kind, sep, rest = spec.partition(":")
    if to_stdout(spec):
        return spec
    if kind not in ("maildir", "mbox") or not sep or not rest:
        raise TargetError(
            f"a whole user's restore goes to maildir:DIR, mbox:DIR (a file per folder) or mbox:-, not {spec!r}"
        )
    parts = folder.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise TargetError(f"folder name {folder!r} is not a safe path under {rest}")
    path = Path(rest).joinpath(*parts)
    return f"maildir:{path}" if kind == "maildir" else f"mbox:{path}.mbox"


def describe_target(spec: str) -> str:
    """``spec`` as the audit trail records it: an IMAP target without its password."""
    kind, _, rest = spec.partition(":")
    if kind in ("imap", "imaps") and rest.startswith("//"):
        from urllib.parse import urlsplit, urlunsplit

        url = urlsplit(spec)
        if url.password is not None:
            host = url.hostname or ""
            netloc = f"{url.username}@{host}" + (f":{url.port}" if url.port else "")
            return urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))
    return spec
