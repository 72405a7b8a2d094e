"""What Cyrus's events cost Cyrus itself: events and bytes per LMTP delivery, Cyrus's CPU per
message and the delivery rate, per ``event_groups`` / ``event_extra_params`` variant, with a
trivial sink in place of the dealer (no vault at all).

Each run: a fresh Cyrus in ``socket`` (datagrams) or ``stream`` (dlist, answered ``OK NIL`` at
once) mode with one variant's imapd.conf lines, ONE LMTP connection, ``--warmup`` deliveries,
then ``--messages`` timed ones. Rounds rotate the order and ratios are paired within a round
(the machine is noisy). The sink (vault/testing/null_receiver.py, a process of its own, on
Cyrus's core with ``--pin``) counts and sizes what arrives by event name. Variants:

    none      no events at all (the baseline)
    shipped   what vault/ingest/dealer/cyrus_config.py asks for now
    full      every extra parameter Cyrus 3.6 can add (what vault asked for up to 2026-12)
    <groups>/<params>  anything else: ``--variant 'message flags/timestamp service'``

    python bench/cyrus_events_bench.py [--rounds 3] [--messages 500] [--modes socket,stream] [--pin]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.ingest.dealer.cyrus_config import EVENT_EXTRA_PARAMS, EVENT_GROUPS  # noqa: E402
from vault.testing.cyrus_server import CyrusServer, new_base_dir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import cpu_seconds, message  # noqa: E402  (the same CPU count and message)

MAIL_HOST_CPUS = {0}
FULL_EXTRA_PARAMS = (
    "bodyStructure clientAddress diskUsed flagNames messageSize messages modseq service "
    "timestamp uidnext vnd.cmu.midset vnd.cmu.unseenMessages vnd.cmu.envelope "
    "vnd.cmu.sessionId vnd.cmu.mailboxACL vnd.cmu.mbtype vnd.cmu.emailid vnd.cmu.threadid"
)
FULL_GROUPS = "message quota flags access mailbox subscription"
VARIANTS = {"shipped": (EVENT_GROUPS, EVENT_EXTRA_PARAMS), "full": (FULL_GROUPS, FULL_EXTRA_PARAMS)}


def variant_lines(name: str) -> tuple[str, str] | None:
    if name == "none":
        return None
    if name in VARIANTS:
        return VARIANTS[name]
    groups, _, params = name.partition("/")
    return groups, params


class VariantCyrus(CyrusServer):
    """A CyrusServer whose event_groups / event_extra_params lines are the variant's."""

    def __init__(self, *args, groups: str, params: str, **kw):
        super().__init__(*args, **kw)
        self.groups, self.params = groups, params

    def imapd_conf_text(self) -> str:
        out = []
        for line in super().imapd_conf_text().splitlines():
            if line.startswith("event_groups:"):
                line = f"event_groups: {self.groups}"
            elif line.startswith("event_extra_params:"):
                line = f"event_extra_params: {self.params}"
            out.append(line)
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- one run
def run(mode: str, variant: str, messages: int, warmup: int, pin: bool) -> dict:
    lines = variant_lines(variant)
    base = new_base_dir("evbench")
    base.chmod(0o755)
    kw: dict = {"users": ("alice",), "cpus": MAIL_HOST_CPUS if pin else None}
    if lines is None:
        cyrus: CyrusServer = CyrusServer(base / "cyrus", mode="none", **kw)
    else:
        cyrus = VariantCyrus(base / "cyrus", mode=mode, groups=lines[0], params=lines[1], **kw)
    report = base / "sink-report"
    proc = None
    try:
        if lines is not None:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vault.testing.null_receiver",
                    mode,
                    str(cyrus.notify_target),
                    "--report",
                    str(report),
                ],
                cwd=REPO,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, MAIL_HOST_CPUS)) if pin else None,
            )
            assert proc.stderr is not None
            proc.stderr.readline()  # "null receiver ready"
        cyrus.start()
        tag = uuid.uuid4().hex[:8]
        with cyrus.lmtp(timeout=120) as lmtp:

            def deliver(prefix: str, n: int) -> float:
                start = time.perf_counter()
                for i in range(n):
                    lmtp.mail("sender@example.org")
                    lmtp.rcpt("alice@vault.test")
                    code, reply = lmtp.data(message(f"<{prefix}{tag}-{i}@bench>"))
                    if code != 250:
                        raise RuntimeError(f"LMTP {code} {reply!r}")
                return time.perf_counter() - start

            deliver("w", warmup)
            time.sleep(0.2)
            pids = cyrus._our_processes()
            before = sum(cpu_seconds(p, children=True) for p in pids)
            sink_before = cpu_seconds(proc.pid) if proc else 0.0
            took = deliver("t", messages)
            time.sleep(0.2)
            after = sum(cpu_seconds(p, children=True) for p in cyrus._our_processes())
            sink_after = cpu_seconds(proc.pid) if proc else 0.0
        result: dict = {
            "mode": mode,
            "variant": variant,
            "rate": messages / took,
            "cyrus_ms": 1000 * (after - before) / messages,
            "sink_ms": 1000 * (sink_after - sink_before) / messages,
            "events": {},
        }
    finally:
        cyrus.cleanup(remove=False)
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    if report.exists():
        for line in report.read_text().splitlines():
            name, n, size = line.split()
            result["events"][name] = (int(n), int(size))
    result["total"] = warmup + messages
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--modes", default="socket,stream")
    ap.add_argument("--variants", default="none,full,shipped", help="comma-separated; see above")
    ap.add_argument("--variant", action="append", default=[], help="one more variant 'groups/params'")
    ap.add_argument("--pin", action="store_true", help="Cyrus and the sink on core 0")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v] + args.variant
    modes = [m for m in args.modes.split(",") if m]
    cells = [("-", "none")] if "none" in variants else []
    cells += [(m, v) for m in modes for v in variants if v != "none"]
    results = []
    for r in range(args.rounds):
        order = cells[r % len(cells) :] + cells[: r % len(cells)]
        for mode, variant in order:
            res = run(mode if mode != "-" else "socket", variant, args.messages, args.warmup, args.pin)
            res["round"], res["mode"] = r, mode
            results.append(res)
            print(
                f"round {r} {mode:6} {variant:10.10} {res['rate']:7.1f} msg/s  cyrus {res['cyrus_ms']:.2f} ms",
                flush=True,
            )
    base = {res["round"]: res["rate"] for res in results if res["variant"] == "none"}
    print(f"\n{'pinned: Cyrus and the sink on core 0; ' if args.pin else ''}load {os.getloadavg()[0]:.1f}")
    print(
        f"{'mode':6} {'variant':10} {'msg/s':>7} {'ratio':>6} {'cyrus ms':>8} {'sink ms':>7}  events per delivery (bytes each)"
    )
    for mode, variant in cells:
        rows = [res for res in results if res["variant"] == variant and res["mode"] == mode]
        ratios = [res["rate"] / base[res["round"]] for res in rows if res["round"] in base]
        events = rows[-1]["events"]
        total = rows[-1]["total"]
        per = "  ".join(f"{name} {n / total:.2f} ({size / n:.0f} B)" for name, (n, size) in events.items())
        print(
            f"{mode:6} {variant[:10]:10} {statistics.median(r['rate'] for r in rows):7.1f}"
            f" {statistics.median(ratios) if ratios else float('nan'):6.2f}"
            f" {statistics.median(r['cyrus_ms'] for r in rows):8.2f}"
            f" {statistics.median(r['sink_ms'] for r in rows):7.2f}  {per}"
        )
    for variant in variants:
        if variant != "none":
            print(f"{variant}: {variant_lines(variant)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
