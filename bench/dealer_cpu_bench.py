"""The dealer's own CPU per event, without Cyrus: ``vaultctl dealer serve`` fed real Cyrus event
bytes at Cyrus's pace, shipping over CURVE to a stand-in broker that acks on receipt.

Each run starts a fresh dealer (``--mode socket|stream``) on core 0 (``--pin``; the stand-in
broker and this feeder elsewhere) and plays deliveries at ``--rate`` per second: each delivery is
Cyrus's pair of events, MailboxModseq then MessageNew (the bytes of tests/data/cyrus, with the
parameters cyrus_config asks for; ``--full-events`` for the ones it asked for up to 2026-12), as
datagrams or as one dlist connection per event answered before the next (like lmtpd). We print the
dealer's CPU ms per delivery (all its threads, from /proc, per thread too), and in stream mode
the median and p95 time Cyrus would wait for each answer. Rounds alternate settings A and B
(``--a``/``--b``: dealer serve flags, e.g. ``--b=--no-sync``) and pair them.

    python bench/dealer_cpu_bench.py [--modes socket,stream] [--deliveries 2000] [--rate 250] [--rounds 3] [--pin]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.ingest.cyrus.notify import Notification, encode_dlist_notify  # noqa: E402
from vault.testing.broker_standin import StandInBroker, curve_home  # noqa: E402
from vault.testing.cli import vaultctl_argv  # noqa: E402

MAIL_HOST_CPUS = {0}
OTHER_CPUS = {1}
_TICK = os.sysconf("SC_CLK_TCK")
SAMPLES = REPO / "tests" / "data" / "cyrus" / "cyrus-events.jsonl"
# what 3.6 no longer sends since cyrus_config asks only for what the handlers read
NOT_ASKED = (
    "bodyStructure",
    "vnd.cmu.envelope",
    "messageSize",
    "messages",
    "modseq",
    "uidnext",
    "vnd.cmu.unseenMessages",
    "vnd.cmu.threadid",
)


def samples(full: bool) -> tuple[dict, dict]:
    events = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line]
    new = next(e for e in events if e["event"] == "MessageNew")
    modseq = next(e for e in events if e["event"] == "MailboxModseq" and e["service"] == "lmtp")
    if not full:
        new = {k: v for k, v in new.items() if k not in NOT_ASKED}
    return modseq, new


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()  # Cyrus's compact form


def thread_cpu(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return out


def run(mode: str, tree: Path, flags: list[str], deliveries: int, rate: float, pin: bool, full: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="dcpu-", dir="/tmp"))
    curve = curve_home(work)
    modseq, new = samples(full)
    listen = work / "d.sock"
    with StandInBroker(curve=curve) as broker:
        argv = [
            sys.executable,
            str(tree / "vaultctl.py"),
            *vaultctl_argv(
                "dealer",
                "serve",
                "--mode",
                mode,
                "--listen",
                str(listen),
                "--spool",
                str(work / "spool"),
                "--broker",
                broker.address,
                *flags,
                home=work,
            )[2:],
        ]
        dealer = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, MAIL_HOST_CPUS)) if pin else None,
        )
        assert dealer.stderr is not None
        for line in dealer.stderr:
            if "dealer ready" in line:
                break
        else:
            raise RuntimeError("the dealer did not start")
        waits: list[float] = []
        try:

            def play(n: int, tag: str) -> None:
                start = time.perf_counter()
                dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if mode == "socket" else None
                for i in range(n):
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    m = dict(modseq, timestamp=f"{tag}{i}")
                    e = dict(new, uri=f"{new['uri'].rsplit('=', 1)[0]}={i + 1}", timestamp=f"{tag}{i}")
                    for raw in (encode(m), encode(e)):
                        if dgram is not None:
                            dgram.sendto(b"external\0EVENT\0\0\0\0000\0" + raw + b"\0", str(listen))
                            continue
                        t = time.perf_counter()
                        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                            s.connect(str(listen))
                            s.sendall(encode_dlist_notify(Notification(raw, "external", "EVENT")))
                            reply = s.recv(100)
                        if reply != b"OK NIL\r\n":
                            raise RuntimeError(f"dealer answered {reply!r}")
                        if tag == "t":
                            waits.append(time.perf_counter() - t)

            play(100, "w")
            time.sleep(1)
            before = thread_cpu(dealer.pid)
            got_before = len(broker.received)

            def shipped() -> int:  # MessageNew events shipped during the timed part
                return sum(b'"MessageNew"' in raw for _, raw, _ in broker.received[got_before:])

            play(deliveries, "t")
            deadline = time.monotonic() + 30
            while shipped() < deliveries and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)  # checkpoints
            after = thread_cpu(dealer.pid)
            got = shipped()
        finally:
            dealer.terminate()
            dealer.wait(10)
    shutil.rmtree(work, ignore_errors=True)
    per = {k: 1000 * (after.get(k, 0.0) - before.get(k, 0.0)) / deliveries for k in after}
    return {
        "cpu_ms": sum(per.values()),
        "threads": per,
        "shipped": got,
        "wait_p50": statistics.median(waits) * 1000 if waits else None,
        "wait_mean": statistics.mean(waits) * 1000 if waits else None,
        "wait_p95": statistics.quantiles(waits, n=20)[18] * 1000 if len(waits) > 20 else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="socket,stream")
    ap.add_argument("--deliveries", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=250.0, help="deliveries per second")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--a", default="", help="dealer serve flags of setting A")
    ap.add_argument("--b", default=None, help="dealer serve flags of setting B (none: only A)")
    ap.add_argument("--a-tree", type=Path, default=REPO, help="the checkout whose vaultctl.py runs A")
    ap.add_argument("--b-tree", type=Path, default=REPO, help="the checkout whose vaultctl.py runs B")
    ap.add_argument(
        "--pin", action="store_true", help="the dealer on core 0, this feeder and the broker on core 1"
    )
    ap.add_argument("--full-events", action="store_true", help="MessageNew with every 3.6 extra parameter")
    args = ap.parse_args(argv)
    if args.pin:
        os.sched_setaffinity(0, OTHER_CPUS)
    settings = {"A": (args.a_tree, shlex.split(args.a))}
    if args.b is not None or args.b_tree != REPO:
        settings["B"] = (args.b_tree, shlex.split(args.b or ""))
    results = []
    for r in range(args.rounds):
        for mode in args.modes.split(","):
            order = list(settings.items()) if r % 2 == 0 else list(reversed(settings.items()))
            for name, (tree, flags) in order:
                res = run(mode, tree, flags, args.deliveries, args.rate, args.pin, args.full_events)
                res.update(mode=mode, setting=name, round=r)
                results.append(res)
                wait = f"  wait p50 {res['wait_p50']:.3f} ms" if res["wait_p50"] is not None else ""
                print(
                    f"round {r} {mode:6} {name}  {res['cpu_ms']:.3f} ms/delivery  shipped {res['shipped']}{wait}",
                    flush=True,
                )
    print(
        f"\nload {os.getloadavg()[0]:.1f}; {args.rate:.0f} deliveries/s, 2 events each; settings {settings}"
    )
    for mode in args.modes.split(","):
        for name in settings:
            rows = [res for res in results if res["mode"] == mode and res["setting"] == name]
            threads = sorted({t for res in rows for t in res["threads"]})
            cells = "  ".join(
                f"{t} {statistics.median(res['threads'].get(t, 0.0) for res in rows):.3f}" for t in threads
            )
            wait = ""
            if rows[0]["wait_p50"] is not None:
                wait = (
                    f"  wait mean {statistics.median(r['wait_mean'] for r in rows):.3f}"
                    f" p50 {statistics.median(r['wait_p50'] for r in rows):.3f}"
                    f" p95 {statistics.median(r['wait_p95'] for r in rows):.3f} ms"
                )
            print(
                f"{mode:6} {name}  dealer {statistics.median(r['cpu_ms'] for r in rows):.3f} ms/delivery{wait}\n    {cells}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
