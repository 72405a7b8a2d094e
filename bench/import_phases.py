"""Where an import's time goes, without a profiler's overhead: wall seconds per phase.

Imports Maildirs into a fresh vault in this process, the methods below timed by wrappers
(a few hundred nanoseconds a call; phases nest, so they do not add up to the total):

    .venv/bin/python bench/import_phases.py MAILDIR... [--encryption keyfile|none]

e.g. the dedup tree of bench/import_bench.py (its Maildirs under /tmp/vault-bench-*/dedup/).
Start-up is measured apart: ``vaultctl --help`` and ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.archive import Vault  # noqa: E402
from vault.config import Config  # noqa: E402
from vault.index import indexer, text  # noqa: E402
from vault.ingest.importers import importer as importer_module  # noqa: E402
from vault.store import cas, catalog, ledger  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)

PHASES = [
    (importer_module.Importer, "run"),
    (importer_module.Importer, "_append"),
    (importer_module._Read, "result"),
    (Vault, "commit"),
    (Vault, "flush_index"),
    (cas.ContentStore, "put"),
    (cas.ContentStore, "exists"),
    (cas.ContentStore, "flush"),
    (ledger.Ledger, "append"),
    (ledger.Ledger, "commit"),
    (catalog.Catalog, "apply"),
    (indexer.SearchIndex, "apply"),
    (indexer.SearchIndex, "add"),
    (indexer.SearchIndex, "commit"),
    (text, "extract"),
]


def _timed(owner, name: str) -> None:
    inner = getattr(owner, name)
    label = f"{getattr(owner, '__name__', owner)}.{name}".rsplit(".", 2)[-2:]

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            key = ".".join(label)
            SPENT[key] += time.perf_counter() - started
            CALLS[key] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("maildirs", nargs="+", type=Path)
    ap.add_argument("--encryption", default="keyfile")
    ap.add_argument("--batch", type=int, help="[import] batch_messages (default: the default)")
    ap.add_argument("--switch", type=float, help="sys.setswitchinterval (seconds)")
    args = ap.parse_args()
    if args.switch:
        sys.setswitchinterval(args.switch)
    for owner, name in PHASES:
        _timed(owner, name)
    with tempfile.TemporaryDirectory(prefix="vault-phases-") as tmp:
        overrides: dict[str, dict] = {"store": {"encryption": args.encryption}}
        if args.batch:
            overrides["import"] = {"batch_messages": args.batch}
        config = Vault.init(Path(tmp) / "home", overrides)
        started = time.perf_counter()
        with Vault.open(Config.load(config.home), writer=True) as vault:
            with vault.bulk():  # as the import command: one index commit at the end
                for box in args.maildirs:
                    importer_module.Importer(vault, box, f"user/{box.name}").run()
            opened_until_close = time.perf_counter()
        total = time.perf_counter() - started
    print(f"{'phase':<28}{'calls':>8}{'seconds':>10}")
    for key in sorted(SPENT, key=SPENT.__getitem__, reverse=True):
        print(f"{key:<28}{CALLS[key]:>8}{SPENT[key]:>10.3f}")
    print(f"{'close':<28}{'':>8}{total - (opened_until_close - started):>10.3f}")
    print(f"{'total (open to close)':<28}{'':>8}{total:>10.3f}")


if __name__ == "__main__":
    main()
