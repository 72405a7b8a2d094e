"""Where an import's time goes, without a profiler's overhead: wall seconds per phase.

Imports Maildirs into a fresh vault in this process, the methods below timed by wrappers
(a few hundred nanoseconds a call; phases nest, so they do not add up to the total):

    .venv/bin/python bench/import_phases.py MAILDIR... [--encryption keyfile|none] [--cpu]

``--cpu`` times the CPU seconds of the calling thread (time.thread_time: the writer's own
work, without the waits for the worker, the read-ahead threads or other processes) instead of
wall seconds: what to compare on a loaded machine.

``--without-index`` is a what-if, not a mode of vault: the search index takes every content for
indexed already, so no text is extracted and no document added (the home it builds answers no
search). What an import would cost without its full-text index, against the same run with it.

e.g. the dedup tree of bench/import_bench.py (its Maildirs under /tmp/vault-bench-*/dedup/).
Start-up is measured apart: ``vaultctl --help`` and ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import resource
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
CLOCK = [time.perf_counter]
CALLS: dict[str, int] = defaultdict(int)

PHASES = [
    (importer_module.Importer, "run"),
    (importer_module.Importer, "_append"),
    (importer_module._Ahead, "result"),
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
        clock = CLOCK[0]
        started = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            key = ".".join(label)
            SPENT[key] += clock() - started
            CALLS[key] += 1

    setattr(owner, name, wrapper)


class _Caller:
    """Who imports: what import_sources records (vaultctl checks the roles before it)."""

    actor = "bench"
    on_behalf_of = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("maildirs", nargs="+", type=Path)
    ap.add_argument("--encryption", default="keyfile")
    ap.add_argument("--batch", type=int, help="[import] batch_messages (default: the default)")
    ap.add_argument("--switch", type=float, help="sys.setswitchinterval (seconds)")
    ap.add_argument("--cpu", action="store_true", help="CPU seconds of the calling thread, not wall")
    ap.add_argument("--without-index", action="store_true", help="what-if: index nothing (see above)")
    args = ap.parse_args()
    if args.without_index:
        indexer.SearchIndex.indexed = lambda self, blob: True  # type: ignore[method-assign]
        indexer.SearchIndex.offer = lambda self, blob, data: None  # type: ignore[method-assign]
    if args.cpu:
        CLOCK[0] = time.thread_time
    if args.switch:
        sys.setswitchinterval(args.switch)
    for owner, name in PHASES:
        _timed(owner, name)
    with tempfile.TemporaryDirectory(prefix="vault-phases-") as tmp:
        overrides: dict[str, dict] = {"store": {"encryption": args.encryption}}
        if args.batch:
            overrides["import"] = {"batch_messages": args.batch}
        config = Vault.init(Path(tmp) / "home", overrides)
        started = CLOCK[0]()
        with Vault.open(Config.load(config.home), writer=True) as vault:
            # the import command's own path: one bulk run (one index commit at the end) and
            # one read-ahead process for all the sources
            targets = [(str(box), f"user/{box.name}") for box in args.maildirs]
            importer_module.import_sources(vault, _Caller(), targets)
            opened_until_close = CLOCK[0]()
        total = CLOCK[0]() - started
    print(f"{'phase':<28}{'calls':>8}{'seconds':>10}")
    for key in sorted(SPENT, key=SPENT.__getitem__, reverse=True):
        print(f"{key:<28}{CALLS[key]:>8}{SPENT[key]:>10.3f}")
    print(f"{'close':<28}{'':>8}{total - (opened_until_close - started):>10.3f}")
    print(f"{'total (open to close)':<28}{'':>8}{total:>10.3f}")
    own, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(
        f"CPU seconds of the whole run: this process {own.ru_utime + own.ru_stime:.3f}, "
        f"its children (read-ahead, text worker) {kids.ru_utime + kids.ru_stime:.3f}"
    )


if __name__ == "__main__":
    main()
