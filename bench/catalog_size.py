"""The catalog's size: bytes per item of each table and index (SQLite's dbstat), of a home.

    python bench/catalog_size.py HOME

Prints one line per b-tree (pages x page size, and per item: the catalog's ``items`` rows),
largest first, then the file's total. Build a home first, e.g. with ``vaultctl import`` of
a few mailboxes; the figures count whole pages, free space in them included.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    args = parser.parse_args()
    path = args.home / "catalog.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (items,) = db.execute("SELECT count(*) FROM items").fetchone()
    rows = db.execute(
        "SELECT name, sum(pgsize), sum(payload), count(*) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()
    total = path.stat().st_size
    per = max(items, 1)
    print(f"{path}: {total:,} bytes, {items:,} items, {total / per:.0f} bytes per item")
    print(f"{'b-tree':32} {'bytes':>10} {'payload':>10} {'pages':>6} {'B/item':>7}")
    for name, size, payload, pages in rows:
        print(f"{name:32} {size:>10,} {payload:>10,} {pages:>6} {size / per:>7.1f}")
    db.close()


if __name__ == "__main__":
    main()
