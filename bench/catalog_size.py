"""The catalog's size: bytes per item of each table and index (SQLite's dbstat), of a home.

    python bench/catalog_size.py HOME [--replay 3]

Prints the file's total (and its free pages), then one line per b-tree, largest first: its
bytes (pages x page size), how many of them are payload (the rows' records), overhead (page
and cell headers, cell pointers) and unused (free space inside its pages), and bytes per item
(the catalog's ``items`` rows). Build a home first, e.g. with ``vaultctl import`` of a few
mailboxes. With
``--replay N``: also replays the home's ledger N times into a new catalog in a temporary
file, in applies of 500 entries as an import commits them (the catalog's share of an
import's time), and prints the CPU and wall seconds of each.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--replay", type=int, default=0, metavar="N")
    args = parser.parse_args()
    path = args.home / "catalog.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (items,) = db.execute("SELECT count(*) FROM items").fetchone()
    rows = db.execute(
        "SELECT name, sum(pgsize), sum(payload), sum(unused), count(*) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    total = path.stat().st_size
    per = max(items, 1)
    print(
        f"{path}: {total:,} bytes, {items:,} items, {total / per:.0f} bytes per item;"
        f" page size {page_size:,}, {free:,} free pages ({free * page_size / per:.1f} B/item)"
    )
    print(
        f"{'b-tree':32} {'bytes':>10} {'payload':>10} {'overhead':>9} {'unused':>9} {'pages':>6} {'B/item':>7}"
    )
    sums = [0, 0, 0, 0, 0]
    for name, size, payload, unused, pages in rows:
        overhead = size - payload - unused
        print(
            f"{name:32} {size:>10,} {payload:>10,} {overhead:>9,} {unused:>9,} {pages:>6} {size / per:>7.1f}"
        )
        sums = [a + b for a, b in zip(sums, (size, payload, overhead, unused, pages))]
    size, payload, overhead, unused, pages = sums
    print(
        f"{'(all)':32} {size:>10,} {payload:>10,} {overhead:>9,} {unused:>9,} {pages:>6} {size / per:>7.1f}"
    )
    print(
        f"{'per item':32} {size / per:>10.1f} {payload / per:>10.1f} {overhead / per:>9.1f} {unused / per:>9.1f}"
    )
    db.close()
    for n in range(args.replay):
        replay(args.home, n + 1)


def replay(home: Path, n: int) -> None:
    from vault.archive import Vault
    from vault.config import Config
    from vault.store.catalog import Catalog

    with Vault.open(Config.load(home)) as vault:
        entries = list(vault.ledger.entries(1))
    with tempfile.TemporaryDirectory(prefix="catalog-bench-", dir=home) as tmp:
        catalog = Catalog(Path(tmp) / "catalog.sqlite")
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(entries), 500):
            catalog.apply(entries[i : i + 500])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        catalog.close()
    print(f"replay {n}: {len(entries):,} entries, {cpu:.2f} s CPU, {wall:.2f} s wall")


if __name__ == "__main__":
    main()
