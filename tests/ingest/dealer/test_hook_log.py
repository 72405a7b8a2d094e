"""The hook's append-only log becomes spool files: rotation under a writer, partial lines, restarts."""

import os
import time

from tests.ingest.dealer.helpers import event_lines
from vault.ingest.dealer.hook_log import HookLog
from vault.ingest.dealer.spool import EventSpool

EVENTS = event_lines()


def stored(spool):
    return [spool.read(n) for n in spool.pending()]


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_lines_become_events_in_order_and_the_log_goes_once_settled(tmp_path):
    spool = EventSpool(tmp_path)
    (tmp_path / "hook.log").write_bytes(b"".join(e + b"\n" for e in EVENTS[:5]))
    hooks = HookLog(spool, grace=0.5)
    spooled, bad = hooks.collect()
    assert stored(spool) == EVENTS[:5] and len(spooled) == 5 and bad == []
    [rotated] = tmp_path.glob("hook-*.log")  # kept: a hook may still hold it open
    assert not (tmp_path / "hook.log").exists()
    assert hooks.collect() == ([], [])  # nothing read twice
    age(rotated, 1)
    hooks.collect()
    assert list(tmp_path.glob("hook-*.log")) == [] and stored(spool) == EVENTS[:5]


def test_a_writer_holding_the_rotated_log_loses_nothing(tmp_path):
    spool = EventSpool(tmp_path)
    writer = open(tmp_path / "hook.log", "ab", buffering=0)
    writer.write(EVENTS[0] + b"\n" + EVENTS[1][:25])
    hooks = HookLog(spool, grace=0.3)
    hooks.collect()
    writer.write(EVENTS[1][25:] + b"\n")  # lands in the rotated file
    writer.close()
    with open(tmp_path / "hook.log", "ab") as f:
        f.write(EVENTS[2] + b"\n")
    hooks.collect()
    assert stored(spool) == EVENTS[:3]


def test_a_partial_last_line_is_quarantined_after_the_grace(tmp_path):
    spool = EventSpool(tmp_path)
    (tmp_path / "hook.log").write_bytes(EVENTS[0] + b"\n" + EVENTS[1][:40])
    hooks = HookLog(spool, grace=0.2)
    hooks.collect()
    assert spool.quarantined() == []
    age(next(tmp_path.glob("hook-*.log")), 1)
    _, bad = hooks.collect()
    [q] = spool.quarantined()
    assert q.name == bad[0] and "not a whole event" in q.reason
    assert (spool.bad / q.name).read_bytes() == EVENTS[1][:40]
    assert stored(spool) == [EVENTS[0]] and list(tmp_path.glob("hook-*.log")) == []


def test_after_a_restart_unsettled_logs_are_read_again(tmp_path):
    spool = EventSpool(tmp_path)
    (tmp_path / "hook.log").write_bytes(EVENTS[0] + b"\n")
    HookLog(spool).collect()
    HookLog(spool).collect()  # a new shipper knows nothing of the first one's progress
    assert stored(spool) == [EVENTS[0], EVENTS[0]]  # twice: the broker deduplicates
