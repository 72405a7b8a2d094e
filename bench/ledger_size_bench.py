"""The ledger's size on disk, by file, per entry, and the import's time (issue 17 item 6).

Imports the mailboxes given into fresh homes (unencrypted store), ``--rounds`` times, and
prints the import's median seconds and the ledger directory's bytes (du -sb, apparent) by
file and per entry after the last round.

    .venv/bin/python bench/ledger_size_bench.py TREE/user0 TREE/user1 ... [--rounds 3]

Target: the ledger directory at most 120 bytes per entry on the dedup tree (8 mailboxes,
13,000 messages; bench/import_bench.py builds it).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.store.leaf_files import LeafFiles  # noqa: E402
from vault.testing.cli import vaultctl_argv  # noqa: E402


def _run(home: Path, *args: str) -> None:
    subprocess.run(
        vaultctl_argv(*args, home=home), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _sizes(ledger: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in sorted(ledger.rglob("*")):
        if p.is_file():
            top = p.relative_to(ledger).parts[0]
            key = f"{top}/*{p.suffix}" if p.parent != ledger else top
            out[key] = out.get(key, 0) + p.stat().st_size
    return out


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mailboxes", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        times, cpus = [], []
        for n in range(args.rounds):
            home = work / f"h{n}"
            _run(home, "init", "--encryption", "none")
            start, cpu = time.perf_counter(), _child_cpu()
            _run(home, "import", *map(str, args.mailboxes), "--mailbox", "user/{name}")
            times.append(time.perf_counter() - start)
            cpus.append(_child_cpu() - cpu)
        ledger = home / "ledger"
        entries = LeafFiles(ledger).count()
        sizes = _sizes(ledger)
        total = sum(sizes.values())
        print(f"import: median {statistics.median(times):.2f} s of {[round(t, 2) for t in times]}")
        print(
            f"import CPU (user+sys): median {statistics.median(cpus):.2f} s of {[round(t, 2) for t in cpus]}"
        )
        packs = [p for p in (home / "blobs" / "packs").rglob("*") if p.is_file()]
        print(f"blob store: {len(packs)} packs, {sum(p.stat().st_size for p in packs)} bytes")
        print(f"ledger: {entries} entries, {total} bytes, {total / entries:.1f} bytes/entry")
        for name, size in sizes.items():
            print(f"  {name:24} {size:>10} bytes {size / entries:8.1f} /entry")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
