"""Mail log parsing and import: lines/s on a large log generated from real line shapes.

The log imitates a busy Postfix relay in front of Cyrus: per message the smtpd connect,
client, cleanup message-id, qmgr from, one to three lmtp deliveries (some bounced, some
deferred, Cyrus's SESSIONID in the reply), removed, disconnect; a share of Sendmail and Cyrus
lmtpd lines; kernel noise and a little garbage. Shapes are those of
tests/data/cyrus/postfix-maillog.txt and the Sendmail/Cyrus lines in tests/trace.

1. parse: ``LineParser.parse`` over every line, one core, in-process (best of ``--rounds``).
2. import: ``MaillogStore.import_file`` into a fresh SQLite store (parse + dedupe key + insert),
   and ``vaultctl maillog import`` as a whole process.
3. trace: ``Tracer.trace`` latency by Message-ID and by queue ID in the imported store.

    python bench/maillog_bench.py [--lines 1000000] [--rounds 3]

Target (issue 6): parsing >= 100k lines/s on one core.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vault.testing.cli import vaultctl  # noqa: E402
from vault.trace.hops import MaillogStore  # noqa: E402
from vault.trace.maillog import LineParser, ParseStats  # noqa: E402
from vault.trace.tracer import Tracer  # noqa: E402

QID_CHARS = "0123456789ABCDEF"


def generate(path: Path, lines: int, seed: int = 1) -> tuple[int, list[str], list[str]]:
    """Write about ``lines`` lines; returns (lines written, some Message-IDs, some queue IDs)."""
    rng = random.Random(seed)
    when = datetime(2026, 11, 1, tzinfo=UTC)
    written, mids, qids = 0, [], []
    with path.open("w") as f:
        n = 0
        while written < lines:
            n += 1
            when += timedelta(milliseconds=rng.randint(20, 400))
            stamp = when.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
            qid = "".join(rng.choice(QID_CHARS) for _ in range(11))
            mid = f"{n}.{rng.getrandbits(40):x}@sender{n % 97}.example"
            pid = rng.randint(1000, 60000)
            out = [
                f"{stamp} mx postfix/smtpd[{pid}]: connect from client{n % 50}.example[192.0.2.{n % 250}]",
                f"{stamp} mx postfix/smtpd[{pid}]: {qid}: client=client{n % 50}.example[192.0.2.{n % 250}]",
                f"{stamp} mx postfix/cleanup[{pid + 1}]: {qid}: message-id=<{mid}>",
                f"{stamp} mx postfix/qmgr[900]: {qid}: from=<user{n % 300}@sender{n % 97}.example>, "
                f"size={rng.randint(800, 90000)}, nrcpt=2 (queue active)",
            ]
            for r in range(rng.randint(1, 3)):
                rcpt = f"u{rng.randint(1, 5000)}@feas.local"
                roll = rng.random()
                if roll < 0.9:
                    out.append(
                        f"{stamp} mx postfix/lmtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay=127.0.0.1[127.0.0.1]:2003, "
                        f"delay=0.0{r + 3}, delays=0.01/0.01/0/0.01, dsn=2.1.5, status=sent (250 2.1.5 Success "
                        f"SESSIONID=<mx-{pid}-{n}-{r}-1641784592852535>)"
                    )
                    out.append(
                        f"{stamp} mx cyrus/lmtp[{pid + 3}]: Delivered: <{mid}> to mailbox: user.{rcpt.split('@')[0]}"
                    )
                elif roll < 0.97:
                    out.append(
                        f"{stamp} mx postfix/lmtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay=127.0.0.1[127.0.0.1]:2003, "
                        "delay=0.03, delays=0.01/0.01/0/0.01, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] "
                        "said: 550 5.1.1 User unknown (in reply to RCPT TO command))"
                    )
                    out.append(
                        f"{stamp} mx postfix/bounce[{pid + 4}]: {qid}: sender non-delivery notification: "
                        f"{qid[:-1]}{'F' if qid[-1] != 'F' else 'E'}"
                    )
                else:
                    out.append(
                        f"{stamp} mx postfix/lmtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay=none, delay=300, "
                        "delays=300/0/0/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2003: "
                        "Connection refused)"
                    )
            out.append(f"{stamp} mx postfix/qmgr[900]: {qid}: removed")
            out.append(
                f"{stamp} mx postfix/smtpd[{pid}]: disconnect from client{n % 50}.example[192.0.2.{n % 250}] "
                "ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6"
            )
            if n % 10 == 0:
                sq = f"t8TCMg{n:08d}"
                out.append(
                    f"{stamp} relay sm-mta[{pid}]: {sq}: from=<a{n}@example.com>, size=1234, class=0, nrcpts=1, "
                    f"msgid=<{mid}>, proto=ESMTP, daemon=MTA, relay=host.example.com [192.0.2.1]"
                )
                out.append(
                    f"{stamp} relay sm-mta[{pid}]: {sq}: to=<b{n}@example.org>, delay=00:00:01, xdelay=00:00:01, "
                    "mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.2], dsn=2.0.0, "
                    f"stat=Sent (Ok: queued as {qid})"
                )
            if n % 7 == 0:
                out.append(f"{stamp} mx kernel: [{n}.000000] eth0: link up")
            if n % 101 == 0:
                out.append(f"garbage line {rng.getrandbits(64):x}")
            if n % 1000 == 1:
                mids.append(mid)
                qids.append(qid)
            f.write("\n".join(out) + "\n")
            written += len(out)
    return written, mids, qids


def bench_parse(path: Path, rounds: int) -> tuple[float, ParseStats]:
    text = path.read_text().splitlines()
    best, stats = float("inf"), ParseStats()
    for _ in range(rounds):
        parser = LineParser(reference=datetime(2026, 12, 31, tzinfo=UTC), zone=UTC)
        parse = parser.parse
        start = time.process_time()  # one core: CPU time of this thread
        for line in text:
            parse(line)
        best = min(best, time.process_time() - start)
        stats = parser.stats
    return len(text) / best, stats


def bench_import(path: Path, work: Path) -> tuple[float, int, float]:
    db = work / "maillog.sqlite"
    db.unlink(missing_ok=True)
    store = MaillogStore(db)
    start = time.perf_counter()
    report = store.import_file(path, zone=UTC)
    seconds = time.perf_counter() - start
    again = time.perf_counter()
    store.import_file(path, zone=UTC)  # nothing new: resumes at the end
    resume = time.perf_counter() - again
    store.close()
    return report.stats.lines / seconds, report.stored, resume


def bench_cli(path: Path, work: Path) -> float:
    home = work / "vault"
    vaultctl(home, "init", check=True, text=False, timeout=None)
    start = time.perf_counter()
    vaultctl(
        home,
        "maillog",
        "import",
        str(path),
        "--timezone",
        "UTC",
        "--json",
        check=True,
        text=False,
        timeout=None,
    )
    return time.perf_counter() - start


def bench_trace(work: Path, mids: list[str], qids: list[str]) -> tuple[float, float]:
    store = MaillogStore(work / "maillog.sqlite")
    tracer = Tracer(store)
    times = []
    for target in mids + qids:
        start = time.perf_counter()
        routes = tracer.trace(target)
        times.append(time.perf_counter() - start)
        assert routes, target
    store.close()
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="maillog-bench-") as tmp:
        work = Path(tmp)
        log = work / "maillog"
        written, mids, qids = generate(log, args.lines)
        size = log.stat().st_size / 1e6
        print(f"log: {written:,} lines, {size:.0f} MB")
        rate, stats = bench_parse(log, args.rounds)
        print(
            f"parse:  {rate:,.0f} lines/s on one core (best of {args.rounds}); {stats.hops:,} hops, "
            f"{sum(stats.ignored.values()):,} about no message, {sum(stats.unparsed.values()):,} unreadable  "
            f"[target >= 100,000]"
        )
        rate, stored, resume = bench_import(log, work)
        print(
            f"import: {rate:,.0f} lines/s into the hop store ({stored:,} hops); re-import of the unchanged log "
            f"{resume * 1000:.0f} ms"
        )
        p50, p95 = bench_trace(work, mids, qids)
        print(
            f"trace:  p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(mids) + len(qids)} Message-IDs and queue IDs"
        )
        seconds = bench_cli(log, work)
        print(f"vaultctl maillog import (whole process): {seconds:.1f} s, {written / seconds:,.0f} lines/s")


if __name__ == "__main__":
    main()
