"""Shipping to a broker ROUTER that follows the spec: acks, window, resend, restarts, no broker."""

import json
import time

import pytest

from tests.ingest.dealer.helpers import DealerProcess, TestBroker, dealer_curve, event_lines, sha, wait_for
from vault.ingest.dealer.shipper import Shipper, ShipperBusy
from vault.ingest.dealer.spool import EventSpool, dropped

EVENTS = event_lines()
KEPT = [e for e in EVENTS if not dropped(e)]  # what the hook log is turned into (no MailboxModseq)


@pytest.fixture
def spool(tmp_path):
    return EventSpool(tmp_path / "spool")


def shipping(spool, broker, **kw):
    kw.setdefault("scan_interval", 0.02)
    kw.setdefault("curve", dealer_curve())
    shipper = Shipper(spool, broker.address if isinstance(broker, TestBroker) else broker, origin="mx1", **kw)
    shipper.start()
    return shipper


def test_every_event_is_shipped_in_order_and_removed_once_acked(spool):
    for line in EVENTS:
        spool.write(line)
    with TestBroker() as broker:
        shipper = shipping(spool, broker)
        try:
            wait_for(lambda: spool.pending() == [] and len(broker.received) >= len(EVENTS), what="acks")
        finally:
            shipper.stop()
    assert broker.raws() == EVENTS
    assert broker.ids() == [sha(e) for e in EVENTS]
    assert {origin for _, _, origin in broker.received} == {b"mx1"}
    assert broker.problems == []


def test_unacked_events_stay_and_are_resent(spool):
    spool.write(EVENTS[0])
    spool.write(EVENTS[1])
    with TestBroker(acking=False) as broker:
        shipper = shipping(spool, broker, ack_timeout=0.2)
        try:
            wait_for(lambda: broker.ids().count(sha(EVENTS[0])) >= 3, what="resends")
            assert len(spool.pending()) == 2
            broker.acking = True
            wait_for(lambda: spool.pending() == [], what="the spool to drain after acks")
        finally:
            shipper.stop()
    assert shipper.stats.resent >= 2


def test_window_bounds_what_is_in_flight(spool):
    for line in EVENTS[:20]:
        spool.write(line)
    with TestBroker(acking=False) as broker:
        shipper = shipping(spool, broker, window=5, ack_timeout=30)
        try:
            wait_for(lambda: len(broker.received) >= 5, what="the first window")
            time.sleep(0.5)
            assert broker.raws() == EVENTS[:5]
        finally:
            shipper.stop()
    assert len(spool.pending()) == 20


def test_no_broker_then_broker(spool):
    spool.write(EVENTS[0])
    broker = TestBroker()
    shipper = shipping(spool, broker.address, ack_timeout=0.3)
    try:
        time.sleep(0.5)
        assert len(spool.pending()) == 1
        spool.write(EVENTS[1])  # spooling goes on while the broker is away
        with broker:
            wait_for(lambda: spool.pending() == [], what="delivery once the broker is up")
    finally:
        shipper.stop()
    assert set(broker.raws()) == {EVENTS[0], EVENTS[1]}


def test_woken_names_ship_without_waiting_for_a_scan(spool):
    with TestBroker() as broker:
        shipper = shipping(spool, broker, scan_interval=3600)
        try:
            time.sleep(0.1)  # the initial scan is over
            name = spool.write(EVENTS[5])
            shipper.wake([name])
            wait_for(lambda: spool.pending() == [], 5, what="the woken event to ship")
        finally:
            shipper.stop()
    assert broker.raws() == [EVENTS[5]]


def test_the_same_bytes_twice_are_one_event(spool):
    spool.write(EVENTS[0])
    spool.write(EVENTS[0] + b"\n")
    with TestBroker() as broker:
        shipper = shipping(spool, broker)
        try:
            wait_for(lambda: spool.pending() == [], what="both files to go")
        finally:
            shipper.stop()
    assert broker.raws() == [EVENTS[0]]


def test_the_hook_log_is_shipped_line_by_line_without_newlines(spool):
    log = spool.root / "hook.log"
    log.write_bytes(KEPT[7] + b"\n" + KEPT[8][:30])  # the second hook still copying
    with TestBroker() as broker:
        shipper = shipping(spool, broker)
        try:
            wait_for(lambda: broker.raws() == [KEPT[7]], what="the complete line")
            with open(next(spool.root.glob("hook-*.log")), "ab") as f:  # rotated under the writer
                f.write(KEPT[8][30:] + b"\n")
            with open(log, "ab") as f:  # the next hook run starts a new log
                f.write(KEPT[9] + b"\n")
            wait_for(lambda: broker.raws() == [KEPT[7], KEPT[8], KEPT[9]], what="the rest")
            wait_for(lambda: spool.pending() == [], what="an empty spool")
        finally:
            shipper.stop()


def test_one_shipper_per_spool(spool):
    first = shipping(spool, "tcp://127.0.0.1:9")
    try:
        with pytest.raises(ShipperBusy, match="already"):
            Shipper(spool, "tcp://127.0.0.1:9").start()
    finally:
        first.stop()


def test_sigkilled_shipper_replays_unacked_events_after_restart(tmp_path):
    spool = EventSpool(tmp_path / "spool")
    numbered = [json.dumps({"event": "MessageNew", "n": i}).encode() for i in range(30)]
    for raw in numbered:
        spool.write(raw)
    acked_first = {sha(r) for r in numbered[:10]}
    with TestBroker(acking=lambda eid: eid in acked_first) as broker:
        dealer = DealerProcess(
            "--mode",
            "external",
            "--spool",
            str(spool.root),
            "--broker",
            broker.address,
            "--window",
            "100",
            "--ack-timeout",
            "60",
        ).start()
        try:
            wait_for(lambda: len(broker.received) >= 30 and len(spool.pending()) == 20, what="first shipping")
        finally:
            dealer.kill()
        assert [spool.read(n) for n in spool.pending()] == numbered[10:]
        before = len(broker.received)
        broker.acking = True
        with DealerProcess("--mode", "external", "--spool", str(spool.root), "--broker", broker.address):
            wait_for(lambda: spool.pending() == [], what="replay after restart")
        assert broker.raws()[before:] == numbered[10:]
