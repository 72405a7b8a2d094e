"""The hop store: a line imported twice is stored once; a growing log is read on from where the
last import stopped; rotated, truncated and compressed logs; a live log followed."""

from __future__ import annotations

import gzip
import threading
import time
from datetime import UTC

from vault.trace.hops import MaillogStore

from .logs import REAL, write_logs

QMGR = "Nov 22 13:00:{:02d} mx postfix/qmgr[1]: 6A6A6A6A6A{:X}: removed\n"


def store(tmp_path) -> MaillogStore:
    return MaillogStore(tmp_path / "maillog.sqlite")


def test_import_twice_stores_once(tmp_path):
    mx, edge = write_logs(tmp_path)
    s = store(tmp_path)
    first = s.import_file(mx, zone=UTC)
    assert first.stats.lines == 19 and first.stored == first.stats.hops == 11
    mx.touch()  # same inode, same size: nothing new to read
    assert s.import_file(mx, zone=UTC).stats.lines == 0
    # the same lines under another file name (a copy) are recognised as already stored
    copy = tmp_path / "copy.log"
    copy.write_text(mx.read_text())
    again = s.import_file(copy, zone=UTC)
    assert again.stats.hops == 11 and again.stored == 0 and s.count() == 11


def test_growing_log_resumes_and_waits_for_whole_lines(tmp_path):
    log = tmp_path / "live.log"
    log.write_text(QMGR.format(0, 0) + QMGR.format(1, 1))
    s = store(tmp_path)
    assert s.import_file(log).stored == 2
    with log.open("a") as f:
        f.write(QMGR.format(2, 2) + QMGR.format(3, 3)[:30])  # the last line half written
    r = s.import_file(log)
    assert (r.stats.lines, r.stored) == (1, 1)
    with log.open("a") as f:
        f.write(QMGR.format(3, 3)[30:])
    r = s.import_file(log)
    assert (r.stats.lines, r.stored) == (1, 1)
    assert [h.queue_id for h in s.by_queue_id("6A6A6A6A6A3")] == ["6A6A6A6A6A3"]


def test_rotated_and_truncated_logs_are_read_from_the_start(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("".join(QMGR.format(i, i) for i in range(5)))
    s = store(tmp_path)
    s.import_file(log)
    log.rename(tmp_path / "mail.log.1")
    log.write_text("".join(QMGR.format(i, i) for i in range(5, 8)))  # another inode, shorter
    r = s.import_file(log)
    assert (r.stats.lines, r.stored) == (3, 3)
    log.write_text(QMGR.format(9, 9))  # truncated in place (copytruncate)
    r = s.import_file(log)
    assert (r.stats.lines, r.stored) == (1, 1) and s.count() == 9


def test_gzip_logs(tmp_path):
    gz = tmp_path / "mail.log.2.gz"
    with gzip.open(gz, "wt") as f:
        f.write(REAL.read_text())
    s = store(tmp_path)
    assert s.import_file(gz, zone=UTC).stored == 11
    again = s.import_file(gz, zone=UTC)  # compressed logs are read whole, stored once
    assert again.stats.lines == 19 and again.stored == 0


def test_follow_picks_up_appends_and_rotation(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text(QMGR.format(0, 0))
    stop = threading.Event()
    batches: list[int | tuple[str, int]] = []  # stored per batch, then ("total", stored)

    def follow():  # SQLite connections belong to one thread: the follower opens its own
        s = store(tmp_path)
        batches.append(
            (
                "total",
                s.follow(
                    log, interval=0.02, stop=stop.is_set, on_batch=lambda r: batches.append(r.stored)
                ).stored,
            )
        )
        s.close()

    def stored():
        return sum(b for b in batches if isinstance(b, int))

    worker = threading.Thread(target=follow)
    worker.start()
    try:
        _wait(lambda: stored() >= 1)
        with log.open("a") as f:
            f.write(QMGR.format(1, 1))
        _wait(lambda: stored() >= 2)
        log.rename(tmp_path / "mail.log.1")
        log.write_text(QMGR.format(2, 2) + QMGR.format(3, 3))
        _wait(lambda: stored() >= 4)
    finally:
        stop.set()
        worker.join(30)
    assert batches[-1] == ("total", 4) and store(tmp_path).count() == 4


def _wait(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)
