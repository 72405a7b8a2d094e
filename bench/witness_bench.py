"""Witnessed checkpoints: what a cosigning witness costs a commit, an open and verify.

A ledger of ``--entries`` entries (default 100k) and a witness (``vaultctl witness serve`` on
a unix socket, its own process): the first submission, commits of 10 entries with and
without the witness (``--commits`` each), a catch-up over 1,000 unwitnessed entries (proof
from the compact nodes), a reader's open check with nothing and with 100 entries
unwitnessed, verify's witness check (a consistency proof from every leaf, then the witness
asked), and a full RFC 9162 proof from half the ledger for comparison.

    python bench/witness_bench.py [--entries 100000] [--commits 100]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.store import merkle  # noqa: E402
from vault.store.ledger import Ledger  # noqa: E402
from vault.testing.witness_server import WitnessServer  # noqa: E402
from vault.witness.cosigner import Cosigner  # noqa: E402
from vault.witness.witnesses import Witnesses, _CosignerWitness  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--commits", type=int, default=100)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="witness-bench-"))
    try:
        led = Ledger.open(base / "ledger", key_path=base / "key", origin="bench.example/ledger")
        for i in range(args.entries):
            led.append("import.run", data={"i": i})
            if i % 10_000 == 9_999:
                led.commit()
        led.commit()
        server = WitnessServer(base / "witness-host")
        server.trust(base / "key.pub")
        with server:
            cosigner = _CosignerWitness(Cosigner(server.url, server.key, 10))
            ws = Witnesses(base / "witness", [cosigner], 30)

            def commits(witnessed: bool) -> float:
                t = time.perf_counter()
                for k in range(args.commits):
                    for _ in range(10):
                        led.append("import.run", data={"k": k})
                    led.commit()
                    if witnessed:
                        ws.after_commit(led)
                return (time.perf_counter() - t) / args.commits

            def reader() -> Ledger:
                return Ledger.open(base / "ledger", key_path=base / "key", origin=led.origin, writable=False)

            print(f"ledger: {led.size} entries")
            print(
                f"first submission (old 0):                 {timed(lambda: ws.check_open(led, remote=True)):.3f} s"
            )
            print(f"commit of 10 entries, no witness:         {commits(False) * 1000:.1f} ms")
            print(
                f"catch-up over {args.commits * 10} entries (compact nodes): {timed(lambda: ws.after_commit(led)) * 1000:.1f} ms"
            )
            print(f"commit of 10 entries, witnessed:          {commits(True) * 1000:.1f} ms")
            r = reader()
            print(
                f"reader open check, all witnessed:         {timed(lambda: ws.check_open(r, remote=False)) * 1000:.2f} ms"
            )
            for k in range(100):
                led.append("import.run", data={"k": k})
            led.commit()
            r = reader()
            print(
                f"reader open check, 100 unwitnessed:       {timed(lambda: ws.check_open(r, remote=False)) * 1000:.2f} ms"
            )
            print(f"verify's witness check:                   {timed(lambda: ws.check(r)):.3f} s")
            leaves = r.leaves
            half = len(leaves) // 2
            full = timed(lambda: merkle.consistency_proof(leaves, half, len(leaves)))
            print(f"full proof {half} -> {len(leaves)} from every leaf:  {full:.3f} s")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
