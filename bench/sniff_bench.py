"""SNIFF dashboard: how long the figures take (vault/sniff.py), cold (every message's header
block read once, the spam cache empty) and warm (verdicts cached), over a vault of the
SpamAssassin corpus spread over ``--users`` users' INBOX and Junk folders and the last 12
weeks (internal dates from file mtimes).

    python bench/sniff_bench.py [--users 8] [--repeat 5]

Prints the item count, the cold time and the warm median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.testing import cli  # noqa: E402
from vault.testing import corpus as corpora  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from vault.archive import Vault
    from vault.config import Config
    from vault.sniff import SpamCache, dashboard

    work = Path(tempfile.mkdtemp(prefix="sniff-bench-"))
    try:
        tree = corpora.spamassassin_tree(work / "corpus")
        files = sorted(tree.glob("*/*.eml"))
        home = work / "home"
        assert cli.vaultctl_run(home, "init").code == 0
        now = datetime.now(UTC)
        per_user = len(files) // args.users
        for u in range(args.users):
            for folder in ("INBOX", "Junk"):
                box = work / "mail" / f"u{u}-{folder}"
                for sub in ("cur", "new", "tmp"):
                    (box / sub).mkdir(parents=True)
            for n, src in enumerate(files[u * per_user : (u + 1) * per_user]):
                folder = "Junk" if "spam" in src.parent.name else "INBOX"
                dest = work / "mail" / f"u{u}-{folder}" / "cur" / f"m{n}:2,S"
                shutil.copyfile(src, dest)
                when = (now - timedelta(days=(n * 83) % 84, minutes=n)).timestamp()
                os.utime(dest, (when, when))
        started = time.monotonic()
        for u in range(args.users):
            for folder in ("INBOX", "Junk"):
                done = cli.vaultctl_run(
                    home, "import", str(work / "mail" / f"u{u}-{folder}"), "--mailbox", f"user/u{u}/{folder}"
                )
                assert done.code == 0, done
        print(f"import: {time.monotonic() - started:.1f} s")
        config = Config.load(home)
        with Vault.open(config, catch_up=False) as vault:
            items = vault.catalog.counts()
            cache = SpamCache(config.path("web", "sniff_cache_path"))
            t0 = time.monotonic()
            board = dashboard(vault, cache, large_bytes=config["web"]["large_message_bytes"])
            cold = time.monotonic() - t0
            warm = []
            for _ in range(args.repeat):
                t0 = time.monotonic()
                dashboard(vault, cache, large_bytes=config["web"]["large_message_bytes"])
                warm.append(time.monotonic() - t0)
            cache.close()
        received = sum(w["received"] for weeks in board.users.values() for w in weeks)
        print(f"catalog: {items}")
        print(f"users: {len(board.users)}, messages received in the 12 weeks: {received:.0f}")
        print(f"dashboard cold (headers read, cache filled): {cold:.2f} s")
        print(f"dashboard warm (median of {args.repeat}): {statistics.median(warm):.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
