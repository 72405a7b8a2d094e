"""Live ingest: what attaching vault costs Cyrus's mail delivery, per dealer mode, and the lag.

Delivery rate (the protocol of tests/data/cyrus/notifier-rates.txt): a fresh Cyrus per run,
ONE LMTP connection, ``--warmup`` transactions then ``--messages`` timed ones. Modes:

    none           no events at all (the baseline)
    external       notifyd + the fork-free /bin/sh hook (``vaultctl dealer install-hook``)
    external-nosync  the same hook without fsync
    external-cat   reference, no vault: notifyd + the harness's hook appending to one file
                   (like notifier-rates.txt's ext_sh)
    <mode>-noship  external, socket or stream with the dealer spooling but not shipping: the
                   listener's share of the cost, without the shipper and the broker on this host
    socket-null, stream-null  reference, no vault: Cyrus set up as for socket or stream, its
                   notifications taken by vault/testing/null_receiver.py, which drops each
                   (socket) or answers it at once (stream): what notifying costs Cyrus whoever
                   listens, the ceiling of the rate any listener can reach
    socket         our daemon on notifysocket (datagrams), no notifyd
    stream         our daemon on ``notifysocket: dlist:`` (acked after fsync), no notifyd

Every mode but ``none`` runs the whole dealer daemon (``vaultctl dealer serve``: listener,
spool, shipper) shipping to a broker. Rounds run the modes in rotating order and ratios are
paired within a round (the machine is noisy); we print median msg/s, the range, the median
paired ratio to ``none``, the end-to-end rate (until the last MessageNew reached the broker)
and how many MessageNew events arrived; then CPU ms per delivered message per component (each
vault process from /proc, all threads; ``cyrus`` = its processes with the children they reaped),
counted from the first timed delivery until every event arrived (and the pipeline settled): on
a 2-core host every ms of ours is taken from Cyrus.

``--no-sync`` runs the dealer with ``[dealer] sync = false`` (README: what it trades).

``--pin`` measures the deployment issue 17 asks about on a 2-core host: Cyrus (cyrmaster started
pinned, so every process it forks), the dealer and the collector on core 0 -- the mail host --
and the vault service (broker, committer) and the workers on core 1; the ``none`` baseline is
Cyrus alone on core 0. The bench's own LMTP client stays unpinned. Its report adds the CPU
groups (mail host = dealer + collector, vault = every vault process) and the targets.

Lag: deliveries paced at ``--lag-rate``/s for ``--lag-seconds`` per mode; for each MessageNew,
the time from Cyrus's event timestamp to its arrival at the broker (p50/p95).

    python bench/ingest_bench.py [--rounds 5] [--messages 500] [--modes none,external,socket,stream] [--pin]

``--b-tree PATH`` (A/B against another checkout, e.g. /work/main): each mode but ``none`` also
runs as ``MODE@B``, in the same rounds, with every vault process started from PATH's vaultctl.py
and Cyrus given PATH's ``event_groups``/``event_extra_params`` (its cyrus_config.py).

Targets (issue 3, item 8): rate with vault / without >= 0.9 in socket mode, >= 0.85 in stream
mode; event-to-archived lag p95 <= 1 s at 100 deliveries/s. By default the dealer ships to the
whole vault (vault/testing/pipeline.py: broker, 2 workers, collector, committer on a fresh vault)
and "archived" means the event's job is DONE (its entries committed); ``--stand-in`` ships to a
router that acks on receipt instead, to isolate the dealer's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.config import DEFAULTS  # noqa: E402
from vault.testing.broker_standin import StandInBroker, curve_home  # noqa: E402
from vault.testing.cli import vaultctl, vaultctl_argv  # noqa: E402
from vault.testing.cyrus_server import CyrusServer, new_base_dir  # noqa: E402
from vault.testing.pipeline import Pipeline  # noqa: E402

MODES = (
    "none",
    "external",
    "external-nosync",
    "external-cat",
    "socket",
    "stream",
    "external-noship",
    "socket-noship",
    "stream-noship",
    "socket-null",
    "stream-null",
)
CYRUS_MODE = {mode: mode.split("-")[0] for mode in MODES}
NULL_RECEIVER = ("socket-null", "stream-null")
NO_DEALER = ("none", "external-cat", *NULL_RECEIVER)
NO_EVENTS_COUNTED = NO_DEALER + ("external-noship", "socket-noship", "stream-noship")
# --pin: the mail host's core and the vault side's (issue 17)
MAIL_HOST_CPUS = {0}
VAULT_CPUS = {1}
PIPELINE_PINS = {
    "dealer": MAIL_HOST_CPUS,
    "collector": MAIL_HOST_CPUS,
    "broker": VAULT_CPUS,
    "worker": VAULT_CPUS,
}
MAIL_HOST = ("dealer", "collector", "receiver")
RATE_TARGETS = {"socket": 0.9, "stream": 0.85}


def archived_times(pipeline: Pipeline) -> dict[str, tuple[float, dict]]:
    """Message-ID -> (when its MessageNew job became DONE, i.e. its entries were committed,
    the event), from the broker's job queue."""
    path = pipeline.home / DEFAULTS["broker"]["jobs_path"]
    if not path.exists():
        return {}
    db = sqlite3.connect(str(path), timeout=30)
    try:
        rows = db.execute(
            "SELECT raw, updated FROM jobs WHERE state='DONE' AND event='MessageNew'"
        ).fetchall()
    finally:
        db.close()
    out: dict[str, tuple[float, dict]] = {}
    for raw, updated in rows:
        event = json.loads(raw)
        for msgid in event.get("vnd.cmu.midset", []):
            out.setdefault(msgid, (updated, event))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (all its threads; with ``children``, also the reaped
    children it waited for), from /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def message(msgid: str) -> bytes:
    return (
        f"From: Dave <dave@example.org>\r\nTo: alice@vault.test\r\nSubject: bench {msgid}\r\n"
        f"Message-ID: {msgid}\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\n"
        + "A line of body text for the benchmark.\r\n"
        * 8
    ).encode()


class Run:
    """One fresh Cyrus in ``mode`` with the dealer attached (unless ``none``)."""

    def __init__(self, mode: str, work: Path, archive: bool, pin: bool = False, sync: bool = True):
        self.mode = mode
        self.pin = pin
        self.sync = sync
        self.base = new_base_dir("bench")
        self.base.chmod(0o755)
        self.spool = self.base / "spool"
        self.work = work
        self.broker: StandInBroker | None = None
        self.pipeline: Pipeline | None = None
        self.archive = archive and mode not in NO_DEALER and not mode.endswith("-noship")
        self.dealer: subprocess.Popen[str] | None = None
        self.receiver: subprocess.Popen[str] | None = None
        target = None
        if CYRUS_MODE[mode] == "external" and mode != "external-cat":
            target = self.base / "notify-hook"
            vaultctl(
                None,
                "dealer",
                "install-hook",
                "--spool",
                str(self.spool),
                "--output",
                str(target),
                "--owner",
                "cyrus",
                "--no-fsync" if mode.endswith("nosync") else "--fsync",
                check=True,
                text=False,
                cwd=REPO,
            )
        self.cyrus = CyrusServer(
            self.base / "cyrus",
            mode=CYRUS_MODE[mode],
            notify_target=target,
            users=("alice",),
            cpus=MAIL_HOST_CPUS if pin else None,
        )

    def __enter__(self):
        self.cyrus.start()
        if self.mode in NULL_RECEIVER:
            self.receiver = self._started(
                [
                    sys.executable,
                    "-m",
                    "vault.testing.null_receiver",
                    CYRUS_MODE[self.mode],
                    str(self.cyrus.notify_target),
                    "--owner",
                    "cyrus",
                ],
                "null receiver ready",
            )
        if self.mode in NO_DEALER:
            return self
        cyrus_mode = CYRUS_MODE[self.mode]
        if self.archive:  # the whole vault: dealer, broker, 2 workers, collector, committer
            home = self.work / f"vault-{uuid.uuid4().hex[:8]}"
            self.pipeline = Pipeline(
                home,
                self.cyrus,
                self.spool,
                workers=2,
                mode=cyrus_mode,
                cpus=PIPELINE_PINS if self.pin else None,
                settings={"dealer": {"sync": self.sync}},
            ).start()
            return self
        args = ["--mode", cyrus_mode, "--spool", str(self.spool), "--socket-owner", "cyrus"]
        args.append("--sync" if self.sync else "--no-sync")
        if self.mode.endswith("-noship"):
            args.append("--no-ship")
        else:
            # over CURVE, as to the real broker: the dealer's home holds the keys
            self.broker = StandInBroker(curve=curve_home(self.base)).__enter__()
            args += ["--broker", self.broker.address]
        if cyrus_mode != "external":
            args += ["--listen", str(self.cyrus.notify_target)]
        argv = vaultctl_argv("dealer", "serve", *args, home=self.base)
        self.dealer = self._started(argv, "dealer ready")
        return self

    def _started(self, argv: list[str], ready: str) -> subprocess.Popen[str]:
        """A mail-host process (on the mail host's core with --pin), once it says ``ready``."""
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, MAIL_HOST_CPUS)) if self.pin else None,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if ready in line:
                return proc
        raise RuntimeError(f"{argv[0]} did not start in {self.mode} mode")

    def __exit__(self, *exc):
        for proc in (self.dealer, self.receiver):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        if self.broker is not None:
            self.broker.close()
        if self.pipeline is not None:
            self.pipeline.stop()
        self.cyrus.cleanup(remove=True)
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------ measurements
    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far per component: each vault process, and Cyrus (its master
        with the children it reaped plus the live ones)."""
        out: dict[str, float] = {}
        if self.pipeline is not None:
            for name, component in self.pipeline.components.items():
                if component.proc is not None:
                    out[name] = cpu_seconds(component.proc.pid)
        if self.dealer is not None:
            out["dealer"] = cpu_seconds(self.dealer.pid)
        if self.receiver is not None:
            out["receiver"] = cpu_seconds(self.receiver.pid)
        out["cyrus"] = sum(cpu_seconds(pid, children=True) for pid in self.cyrus._our_processes())
        return out

    def arrivals(self) -> dict[str, tuple[float, dict]]:
        """Message-ID -> (time it reached the broker / was archived, MessageNew event)."""
        out: dict[str, tuple[float, dict]] = {}
        if self.pipeline is not None:
            return archived_times(self.pipeline)
        if self.broker is None:  # -noship and no-dealer modes: nothing is shipped anywhere
            raise RuntimeError(f"{self.mode}: no broker, so no arrivals to measure")
        for (_eid, raw, _), at in zip(list(self.broker.received), list(self.broker.arrived)):
            event = json.loads(raw)
            if event.get("event") == "MessageNew":
                for msgid in event.get("vnd.cmu.midset", []):
                    out.setdefault(msgid, (at, event))
        return out

    def deliver(self, msgids: list[str], rate: float | None = None) -> float:
        """Deliver over one LMTP connection; seconds taken. ``rate``: pace to that many per s."""
        with self.cyrus.lmtp(timeout=120) as lmtp:
            start = time.perf_counter()
            for i, msgid in enumerate(msgids):
                if rate:
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                lmtp.mail("sender@example.org")
                lmtp.rcpt("alice@vault.test")
                code, reply = lmtp.data(message(msgid))
                if code != 250:
                    raise RuntimeError(f"LMTP {code} {reply!r}")
            return time.perf_counter() - start

    def wait_events(self, msgids: list[str], seconds: float = 60) -> dict:
        deadline = time.monotonic() + seconds
        wanted = set(msgids)
        while True:
            got = self.arrivals()
            if wanted <= got.keys() or time.monotonic() > deadline:
                return {m: got[m] for m in wanted if m in got}
            time.sleep(0.05)


class OtherTree:
    """While entered: vault processes from ``tree``'s vaultctl.py, Cyrus with its event lines."""

    def __init__(self, tree: Path):
        import runpy

        import vault.ingest.dealer.cyrus_config as ours
        import vault.testing.cli as cli

        self.cli, self.ours = cli, ours
        theirs = runpy.run_path(str(tree / "vault" / "ingest" / "dealer" / "cyrus_config.py"))
        self.swap = {
            (cli, "VAULTCTL"): tree / "vaultctl.py",
            (ours, "EVENT_GROUPS"): theirs["EVENT_GROUPS"],
            (ours, "EVENT_EXTRA_PARAMS"): theirs["EVENT_EXTRA_PARAMS"],
        }

    def __enter__(self):
        self.saved = {key: getattr(*key) for key in self.swap}
        for (module, name), value in self.swap.items():
            setattr(module, name, value)

    def __exit__(self, *exc):
        for (module, name), value in self.saved.items():
            setattr(module, name, value)


def base_mode(mode: str) -> str:
    return mode.split("@")[0]


def rate_run(
    mode: str, work: Path, messages: int, warmup: int, archive: bool, pin: bool = False, sync: bool = True
) -> dict:
    tag = uuid.uuid4().hex[:10]
    with Run(mode, work, archive, pin, sync) as run:
        run.deliver([f"<w{tag}-{i}@bench>" for i in range(warmup)])
        timed = [f"<t{tag}-{i}@bench>" for i in range(messages)]
        cpu_before = run.cpu()
        started = time.time()
        seconds = run.deliver(timed)
        result = {"mode": mode, "rate": messages / seconds}
        if mode not in NO_EVENTS_COUNTED:
            got = run.wait_events(timed)
            result["events"] = len(got)
            if got:
                result["e2e_rate"] = messages / (max(at for at, _ in got.values()) - started)
            if run.pipeline is not None:
                try:  # the MailboxModseq jobs too
                    run.pipeline.wait_settled(30, quiet=0.2)
                except AssertionError:
                    pass
        cpu_after = run.cpu()
        # CPU ms per delivered message, timed part until everything arrived/settled
        result["cpu_ms"] = {
            name: 1000 * (cpu_after[name] - cpu_before.get(name, 0.0)) / messages for name in cpu_after
        }
    return result


def _event_time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def lag_run(
    mode: str, work: Path, rate: float, seconds: float, archive: bool, pin: bool = False, sync: bool = True
) -> dict:
    tag = uuid.uuid4().hex[:10]
    with Run(mode, work, archive, pin, sync) as run:
        msgids = [f"<l{tag}-{i}@bench>" for i in range(int(rate * seconds))]
        took = run.deliver(msgids, rate=rate)
        got = run.wait_events(msgids)
    lags = sorted(at - _event_time(event) for at, event in got.values())
    q = statistics.quantiles(lags, n=100) if len(lags) > 1 else lags * 99
    return {
        "mode": mode,
        "to": "archived (job DONE)" if run.archive else "broker (stand-in, acks on receipt)",
        "offered": rate,
        "achieved": len(msgids) / took,
        "events": len(got),
        "of": len(msgids),
        "p50": q[49],
        "p95": q[94],
        "max": lags[-1] if lags else None,
    }


def report_rates(args, modes: list[str], results: list[dict]) -> None:
    if args.pin:
        print("\npinned: Cyrus, dealer, collector -> core 0; vault service, workers -> core 1")
    if not args.sync:
        print("dealer: [dealer] sync = false (journal written, not fdatasynced)")
    print(
        f"\nONE LMTP connection, {args.messages} transactions after {args.warmup} warm-up, fresh Cyrus per run, "
        f"{args.rounds} paired rounds"
    )
    print(
        f"{'mode':16} {'median msg/s':>12} {'range':>13} {'ratio(paired)':>14} {'e2e msg/s':>10}  MessageNew"
    )
    base = {res["round"]: res["rate"] for res in results if res["mode"] == "none"}
    for mode in modes:
        rows = [res for res in results if res["mode"] == mode]
        rates = [res["rate"] for res in rows]
        ratios = [res["rate"] / base[res["round"]] for res in rows if res["round"] in base]
        e2e = [res["e2e_rate"] for res in rows if "e2e_rate" in res]
        events = [res["events"] for res in rows if "events" in res]
        print(
            f"{mode:16} {statistics.median(rates):12.1f} {min(rates):6.0f}-{max(rates):<6.0f}"
            f" {statistics.median(ratios) if ratios else float('nan'):14.2f}"
            f" {statistics.median(e2e) if e2e else float('nan'):10.1f}  {events or '-'}"
        )
    print("\nCPU ms per delivered message (median over rounds; timed part until all events arrived)")
    for mode in modes:
        rows = [res["cpu_ms"] for res in results if res["mode"] == mode and "cpu_ms" in res]
        names = sorted({n for row in rows for n in row}, key=lambda n: (n != "cyrus", n))
        cells = [f"{n} {statistics.median(row.get(n, 0.0) for row in rows):.2f}" for n in names]
        print(f"{mode:16} " + "  ".join(cells))
    print(
        "\nCPU groups, ms per delivered message (median): mail host = dealer+collector (or the null receiver), vault = all ours"
    )
    print(f"{'mode':16} {'cyrus':>7} {'mail host':>9} {'vault':>7} {'vault/cyrus':>11}  target ratio")
    for mode in modes:
        rows = [res["cpu_ms"] for res in results if res["mode"] == mode and "cpu_ms" in res]
        if not rows:
            continue
        cyrus = statistics.median(row.get("cyrus", 0.0) for row in rows)
        host = statistics.median(sum(row.get(n, 0.0) for n in MAIL_HOST) for row in rows)
        ours = statistics.median(sum(v for n, v in row.items() if n != "cyrus") for row in rows)
        ratios = [
            res["rate"] / base[res["round"]]
            for res in results
            if res["mode"] == mode and res["round"] in base
        ]
        target = RATE_TARGETS.get(CYRUS_MODE[base_mode(mode)])
        verdict = ""
        if target is not None and ratios and base_mode(mode) == CYRUS_MODE[base_mode(mode)]:
            got = statistics.median(ratios)
            verdict = f"{got:.2f} {'>=' if got >= target else '<'} {target}"
        elif base_mode(mode) in NULL_RECEIVER and ratios:
            verdict = f"{statistics.median(ratios):.2f} ceiling (target {target})"
        print(
            f"{mode:16} {cyrus:7.2f} {host:9.2f} {ours:7.2f} {ours / cyrus if cyrus else float('nan'):11.2f}  {verdict}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument(
        "--modes", default="none,external,external-nosync,socket,stream", help="'' skips the rate part"
    )
    ap.add_argument("--lag-rate", type=float, default=100.0)
    ap.add_argument("--lag-seconds", type=float, default=10.0)
    ap.add_argument("--lag-modes", default="external,socket,stream", help="'' skips the lag part")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument(
        "--stand-in",
        dest="archive",
        action="store_false",
        help="ship to a stand-in broker that acks on receipt instead of the whole vault",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="Cyrus, dealer, collector on core 0; vault service and workers on core 1 (issue 17)",
    )
    ap.add_argument(
        "--no-sync",
        dest="sync",
        action="store_false",
        help="the dealer writes its journal without fdatasync ([dealer] sync = false; README)",
    )
    ap.add_argument("--b-tree", type=Path, help="A/B: each mode also as MODE@B from this checkout")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
    other = OtherTree(args.b_tree.absolute()) if args.b_tree else None
    if other is not None:
        modes += [f"{m}@B" for m in modes if m != "none"]
    work = Path(new_base_dir("bench-work"))
    results, lags = [], []
    try:
        for r in range(args.rounds if modes else 0):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            for mode in order:
                if mode.endswith("@B") and other is not None:
                    with other:
                        res = rate_run(
                            base_mode(mode),
                            work,
                            args.messages,
                            args.warmup,
                            args.archive,
                            args.pin,
                            args.sync,
                        )
                    res["mode"] = mode
                else:
                    res = rate_run(mode, work, args.messages, args.warmup, args.archive, args.pin, args.sync)
                res["round"] = r
                results.append(res)
                print(
                    f"round {r} {mode:16} {res['rate']:7.1f} msg/s"
                    + (f"  events {res['events']}/{args.messages}" if "events" in res else ""),
                    flush=True,
                )
        for mode in [m for m in args.lag_modes.split(",") if m]:
            lags.append(
                lag_run(mode, work, args.lag_rate, args.lag_seconds, args.archive, args.pin, args.sync)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if modes:
        report_rates(args, modes, results)
    if lags:
        print(
            f"\nLag from Cyrus's event timestamp to {lags[0]['to']}, deliveries paced at {args.lag_rate:.0f}/s for {args.lag_seconds:.0f} s"
        )
        print(f"{'mode':16} {'achieved/s':>10} {'events':>11} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
        for lag in lags:
            print(
                f"{lag['mode']:16} {lag['achieved']:10.1f} {lag['events']:>5}/{lag['of']:<5} {lag['p50']:7.3f}"
                f" {lag['p95']:7.3f} {lag['max']:7.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"rates": results, "lags": lags}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
