"""CurveZMQ on the live-ingest links: CPU per event with CURVE and without.

Two links, each end the code the pipeline runs, on loopback in one process (both ends'
threads and libzmq's I/O threads counted together, ``time.process_time``), one connection per
run (the handshake is paid once, as in the pipeline):

    dealer link     the dealer's Shipper offering ``--events`` MessageNew events (Cyrus 3.6's,
                    as tests/data/cyrus/cyrus-events.jsonl has it, each with its own UID) to the
                    stand-in broker router (vault/testing/broker_standin.py), which acks each;
                    until the last ack
    collector link  CollectorClient.fetch_message -> CollectorServer ``--fetches`` times, the
                    answer a ``--message-kb`` message (the server's answer is fixed: what is
                    measured is the transport, not the spool read)

Each is run ``--rounds`` times, plain and CURVE alternating; the medians are printed, in
microseconds of CPU per event (per fetch), with the ratio.

    python bench/curve_bench.py [--events 20000] [--fetches 5000] [--message-kb 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.config import VAULT, Config  # noqa: E402
from vault.curve.guard import client_curve, server_curve  # noqa: E402
from vault.curve.keys import init_home_keys  # noqa: E402
from vault.ingest.collector.client import CollectorClient  # noqa: E402
from vault.ingest.collector.frames import OK  # noqa: E402
from vault.ingest.collector.server import CollectorServer  # noqa: E402
from vault.ingest.dealer.shipper import Shipper  # noqa: E402
from vault.ingest.dealer.spool import EventSpool  # noqa: E402
from vault.testing.broker_standin import StandInBroker  # noqa: E402

CHUNK = 2000  # events offered at once (below the shipper's MEMORY_EVENTS)
SAMPLE = REPO / "tests" / "data" / "cyrus" / "cyrus-events.jsonl"


def message_new() -> dict:
    for line in SAMPLE.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "MessageNew":
            return event
    raise SystemExit(f"no MessageNew in {SAMPLE}")


def curves(home: Path, curve: bool, section: str, domain: str, server: str, client: str):
    if not curve:
        return None, None
    config = Config.defaults(home)
    endpoint = "tcp://127.0.0.1:0"
    return (
        server_curve(config, section=section, endpoint=endpoint, domain=domain, component=server),
        client_curve(config, section=section, endpoint=endpoint, component=client, server=server),
    )


def dealer_run(home: Path, curve: bool, events: int) -> float:
    """CPU seconds to ship ``events`` events and have each acked."""
    server, client = curves(home, curve, "dealer", "dealers", "broker", "dealer")
    template = message_new()
    raws = []
    for n in range(events):
        template["uidnext"] = n + 2
        template["uri"] = f"imap://bench/user/alice;UIDVALIDITY=1;UID={n + 1}"
        raws.append(json.dumps(template).encode())
    spool_dir = Path(tempfile.mkdtemp(prefix="curve-bench-spool-"))
    with StandInBroker(curve=server) as broker:
        shipper = Shipper(EventSpool(spool_dir), broker.address, origin="bench", window=500, curve=client)
        shipper.on_acked = lambda names: None
        shipper.start()
        try:
            start = time.process_time()
            deadline = time.monotonic() + 300
            # in chunks: the shipper keeps at most MEMORY_EVENTS offered events' bytes in memory
            for first in range(0, events, CHUNK):
                shipper.offer([(f"e{n}", raws[n]) for n in range(first, min(events, first + CHUNK))])
                while shipper.stats.acked < min(events, first + CHUNK // 2):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"only {shipper.stats.acked} of {events} acked")
                    time.sleep(0.002)
            while shipper.stats.acked < events:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {shipper.stats.acked} of {events} acked")
                time.sleep(0.002)
            return time.process_time() - start
        finally:
            shipper.stop()
            shutil.rmtree(spool_dir, ignore_errors=True)


class _FixedAnswer:
    """The collector's answers without a spool: the same message for every FETCH."""

    def __init__(self, size: int):
        self.reply = [OK, b"x" * size, json.dumps({"internal_date": None, "size": size}).encode()]

    def handle(self, frames: list[bytes]) -> list[bytes]:
        return self.reply

    def close(self) -> None:
        pass


def collector_run(home: Path, curve: bool, fetches: int, size: int) -> float:
    """CPU seconds for ``fetches`` round trips of a ``size``-byte message."""
    server_side, client_side = curves(home, curve, "collector", "collector", "collector", "worker")
    running = CollectorServer(_FixedAnswer(size), "tcp://127.0.0.1:0", curve=server_side)  # type: ignore[arg-type]
    running.start()
    client = CollectorClient(running.address, timeout=30, curve=client_side)
    try:
        client.fetch_message("bench", 1)  # connected (and the handshake done) before timing
        start = time.process_time()
        for _ in range(fetches):
            client.fetch_message("bench", 1)
        return time.process_time() - start
    finally:
        client.close()
        running.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--fetches", type=int, default=5000)
    ap.add_argument("--message-kb", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="curve-bench-"))
    try:
        init_home_keys(home, VAULT)
        results: dict[str, dict[bool, list[float]]] = {
            "dealer": {False: [], True: []},
            "collector": {False: [], True: []},
        }
        for _ in range(args.rounds):
            for curve in (False, True):
                results["dealer"][curve].append(dealer_run(home, curve, args.events) / args.events)
                results["collector"][curve].append(
                    collector_run(home, curve, args.fetches, args.message_kb * 1024) / args.fetches
                )
        print(f"CPU per event, median of {args.rounds} rounds (both ends and libzmq's threads):")
        for link, what in (
            ("dealer", f"dealer -> broker, MessageNew event ({args.events} per run)"),
            (
                "collector",
                f"worker -> collector FETCH, {args.message_kb} KiB message ({args.fetches} per run)",
            ),
        ):
            plain = statistics.median(results[link][False]) * 1e6
            curved = statistics.median(results[link][True]) * 1e6
            print(
                f"  {what}: plain {plain:.1f} us, CURVE {curved:.1f} us "
                f"({curved / plain:.2f}x, +{curved - plain:.1f} us)"
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
