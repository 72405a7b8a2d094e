"""What a vault home costs per message, by component, after one import (issue 17 item 6).

Imports every Maildir of TREE (default: the dedup tree bench/import_bench.py builds, made afresh
from the cached corpus in a temporary directory) into a fresh home and prints each component's apparent bytes (du -b)
in total and per message, as import_bench.py prints them, and the ledger directory by file.
Sizes are deterministic; load does not matter.

    .venv/bin/python bench/home_size.py [TREE] [--encryption keyfile|none]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from import_bench import build_trees, components, run_vault  # noqa: E402
from ledger_size_bench import _sizes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", nargs="?", type=Path, help="Maildirs to import (default: the dedup tree)")
    ap.add_argument("--encryption", default="keyfile")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="home-size-"))
    try:
        tree = args.tree or build_trees(None, work / "trees")["dedup"][0]
        boxes = sorted(p for p in tree.iterdir() if (p / "cur").is_dir())
        messages = sum(1 for b in boxes for d in ("cur", "new") for f in (b / d).iterdir() if f.is_file())
        home = work / "home"
        run_vault(tree, home, args.encryption)
        parts = components(home)
        total = sum(a for a, _ in parts.values())
        print(f"{messages} messages; home {total:,} bytes, without index {total - parts['index'][0]:,}")
        for part, (app, _) in parts.items():
            print(f"  {part:<18}{app / messages:>9.1f}/m{app:>14,}")
        print("ledger by file:")
        for name, size in _sizes(home / "ledger").items():
            print(f"  {name:<24}{size / messages:>9.1f}/m{size:>12,}")
        packs = [p for p in (home / "blobs" / "packs").rglob("*") if p.is_file()]
        print(f"blob store: {len(packs)} packs")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
