"""Same-load A/B of ``vaultctl import``: checkouts of vault against each other and borg.

Each round runs every contender once on the same Maildir tree, into a fresh home (or borg
repository), the order rotating between rounds (round r starts with the r-th contender, so
each holds each place equally often); prints the median wall and CPU seconds (user + system
of the command and its children) of each, and its median wall in each place (a place effect
left would show there). Before each
run the tree's page cache is settled, untimed (``--cache``, vault/testing/page_cache.py: borg
drops what it read from the cache, so otherwise whatever follows borg reads from the disk):

    .venv/bin/python bench/import_ab.py TREE [--rounds 3] [--checkout NAME=DIR ...] [--no-borg]
        [--cache warm|cold]

TREE holds the Maildirs (e.g. the dedup tree of bench/import_bench.py: user0..user7). A
checkout is a directory holding ``vaultctl.py``; by default this one (``this``). Each runs
with this interpreter, its own directory first on ``PYTHONPATH``, its modules byte-compiled
first (as an installed package's are).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.testing import page_cache  # noqa: E402
from vault.testing.cli import byte_compile  # noqa: E402


def _run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of one command, its children included."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def vault(checkout: Path, boxes: list[str], home: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    cli = [sys.executable, str(checkout / "vaultctl.py"), "--home", str(home)]
    subprocess.run(cli + ["init"], env=env, check=True, stdout=subprocess.DEVNULL)
    return _run(cli + ["import", *boxes, "--mailbox", "user/{name}"], env=env)


def borg(tree: Path, repo: Path) -> tuple[float, float]:
    env = dict(
        os.environ, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes"
    )
    subprocess.run(
        ["borg", "init", "--encryption=none", str(repo)], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return _run(["borg", "create", "--compression", "zstd,3", f"{repo}::bench", "."], cwd=tree, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--no-borg", action="store_true")
    ap.add_argument(
        "--cache", choices=page_cache.MODES, default="warm", help="the tree's page cache at each start"
    )
    args = ap.parse_args()
    checkouts = dict(c.split("=", 1) for c in args.checkout) or {"this": str(REPO)}
    boxes = sorted(str(p) for p in args.tree.iterdir() if (p / "cur").is_dir())
    names = [*checkouts, *([] if args.no_borg else ["borg"])]
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    placed: dict[tuple[str, int], list[float]] = {}
    for checkout in checkouts.values():
        byte_compile(checkout)  # as installed: each start reads bytecode
    with tempfile.TemporaryDirectory(prefix="vault-ab-") as tmp:
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for position, name in enumerate(order):
                place = Path(tmp) / f"{name}-{rnd}"
                page_cache.settle(args.tree, args.cache)
                if name == "borg":
                    w, c = borg(args.tree, place)
                else:
                    w, c = vault(Path(checkouts[name]).resolve(), boxes, place)
                shutil.rmtree(place)
                wall[name].append(w)
                cpu[name].append(c)
                placed.setdefault((name, position), []).append(w)
                print(f"round {rnd} {name:<12} wall {w:6.2f} s  cpu {c:6.2f} s", flush=True)
    places = "".join(f"{f'place {i + 1}':>10}" for i in range(len(names)))
    print(f"{'':<12}{'wall (median)':>15}{'cpu (median)':>15}{places}")
    for name in names:
        by_place = "".join(
            f"{statistics.median(placed[name, i]):>8.2f} s" if (name, i) in placed else f"{'-':>10}"
            for i in range(len(names))
        )
        print(
            f"{name:<12}{statistics.median(wall[name]):>13.2f} s{statistics.median(cpu[name]):>13.2f} s{by_place}"
        )


if __name__ == "__main__":
    main()
