"""Helpers for archive-core tests: run vaultctl, build source mailboxes from corpus files."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from vault.ingest.importers import open_source
from vault.ingest.importers.base import SourceMessage
from vault.testing.cli import REPO, vaultctl_process, vaultctl_run  # noqa: F401 (re-exported)

# vaultctl_run/_process and REPO are defined once, in vault.testing.cli; they are re-exported
# because tests (and branches in flight) import them from here.


def init_vault(home: Path, **settings) -> Path:
    """A fresh vault; settings as {"section.key": value} are written into its config."""
    r = vaultctl_run(home, "init")
    assert r.code == 0, r
    if settings:
        text = (home / "config.toml").read_text()
        for dotted, value in settings.items():
            section, key = dotted.split(".")
            lines = text.splitlines()
            start = lines.index(f"[{section}]")
            for i in range(start + 1, len(lines)):
                if lines[i].startswith(f"{key} = "):
                    lines[i] = f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"'
                    break
            else:
                raise KeyError(dotted)
            text = "\n".join(lines) + "\n"
        (home / "config.toml").write_text(text)
    return home


def init_s3_vault(home: Path, endpoint, bucket: str) -> Path:
    """A fresh vault whose blob store is ``bucket`` on ``endpoint`` (tests/servers/s3.py)."""
    return init_vault(
        home,
        **{
            "store.backend": "s3",
            "s3.endpoint_url": endpoint.url,
            "s3.bucket": bucket,
            "s3.access_key_id": endpoint.access_key_id,
            "s3.secret_access_key": endpoint.secret_access_key,
            "s3.request_checksum_calculation": "when_required",
        },
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def epoch(n: int) -> float:
    """A distinct, whole-second internal date per message (Maildir keeps mtimes in seconds)."""
    return datetime(2002, 8, 1, tzinfo=UTC).timestamp() + n * 3600


MAILDIR_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}


def make_maildir(root: Path, files: list[Path], flags: dict[int, list[str]] | None = None) -> Path:
    """A Maildir holding copies of ``files``: message n is ``cur/<n>.test:2,<flags>``."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n, f in enumerate(files):
        set_maildir_flags(root, n, (flags or {}).get(n, []), data=f.read_bytes())
    return root


def write_maildir(root: Path, messages: dict[str, bytes]) -> Path:
    """A Maildir holding ``messages`` (file name in cur/ -> bytes)."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, data in messages.items():
        (root / "cur" / name).write_bytes(data)
    return root


def _find_maildir_file(root: Path, n: int) -> Path | None:
    found = list((root / "cur").glob(f"{n}.test:2,*"))
    return found[0] if found else None


def maildir_file(root: Path, n: int) -> Path:
    """The file of message ``n`` (see make_maildir); it must be there."""
    found = _find_maildir_file(root, n)
    assert found is not None, f"message {n} is not in {root}"
    return found


def set_maildir_flags(root: Path, n: int, flags: list[str], data: bytes | None = None) -> Path:
    letters = "".join(sorted(MAILDIR_LETTERS[f] for f in flags))
    target = root / "cur" / f"{n}.test:2,{letters}"
    old = _find_maildir_file(root, n)
    if data is not None:
        target.write_bytes(data)
    elif old is not None and old != target:
        old.rename(target)
    os.utime(target, (epoch(n), epoch(n)))
    return target


def read_messages(path: Path) -> list[bytes]:
    """The bytes of every message in a mailbox (as restored by vault); a problem fails the test."""
    out = []
    for found in open_source(path).scan():
        assert isinstance(found, SourceMessage), found
        out.append(found.read())
    return out


def read_maildir(root: Path) -> dict[str, list[tuple[list[str], float]]]:
    """sha256 -> [(flags, mtime), ...] for every message in a Maildir (as restored by vault)."""
    letters = {v: k for k, v in MAILDIR_LETTERS.items()}
    out: dict[str, list[tuple[list[str], float]]] = {}
    for p in list((root / "cur").iterdir()) + list((root / "new").iterdir()):
        info = p.name.split(":2,")[1] if ":2," in p.name else ""
        flags = sorted(letters[c] for c in info if c in letters)
        out.setdefault(sha(p.read_bytes()), []).append((flags, p.stat().st_mtime))
    return out


@contextlib.contextmanager
def read_only_view(home: Path, where: Path):
    """``home`` bind-mounted read-only at ``where`` (tests run as root)."""
    where.mkdir(parents=True)
    bound = subprocess.run(["mount", "--bind", str(home), str(where)])
    assert bound.returncode == 0, "bind mounts need root: run the tests as root"
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
        yield where
    finally:
        if subprocess.run(["umount", str(where)]).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def ledger_lines(ledger: Path) -> list[bytes]:
    """The stored lines of every segment of a ledger directory, in order, sealed segments'
    decompressed (a format 2 segment's header line included): what the ledger keeps as text."""
    from vault.store import segment as fmt

    out: list[bytes] = []
    for name in fmt.segment_names(ledger / "segments"):
        path = ledger / "segments" / name
        if fmt.is_sealed(path):
            out += [line for _, _, frame in fmt.iter_sealed(path.read_bytes(), name) for line in frame]
        else:
            out += path.read_bytes().splitlines()
    return out


def ledger_entries(ledger: Path) -> list[dict]:
    """Every entry stored in a ledger directory's segments (any format), as its JSON object."""
    from vault.store import segment as fmt
    from vault.store.ledger import scan_segment

    return [
        e.to_json()
        for name in fmt.segment_names(ledger / "segments")
        for _, e in scan_segment(ledger / "segments" / name)
    ]
