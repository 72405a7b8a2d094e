"""The durable spool: arrival order, atomic visibility, leftovers, quarantine with reasons."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ingest.dealer.helpers import REPO, event_lines, sha, wait_for
from vault.ingest.dealer.spool import EventSpool, EventSpoolError, event_id, spool_status

EVENTS = event_lines()


def test_events_come_back_in_arrival_order_without_transport_bytes(tmp_path):
    spool = EventSpool(tmp_path / "s")
    names = [spool.write(line + b"\n") for line in EVENTS[:20]]
    names += spool.write_many([line + b"\0" for line in EVENTS[20:]], fsync_pool=ThreadPoolExecutor(4))
    assert spool.pending() == names
    assert [spool.read(n) for n in names] == EVENTS
    assert all(re.fullmatch(r"\d{19}\.\d+\.\d+", n) for n in names)
    assert os.listdir(spool.tmp) == []
    assert (spool.new / names[0]).read_bytes() == EVENTS[0]


def test_event_id_is_sha256_of_the_stored_bytes():
    assert event_id(EVENTS[0]) == sha(EVENTS[0])


def test_remove_is_final(tmp_path):
    spool = EventSpool(tmp_path)
    name = spool.write(EVENTS[0])
    spool.remove(name)
    spool.remove(name)
    assert spool.pending() == []
    with pytest.raises(FileNotFoundError):
        spool.read(name)


def test_quarantine_keeps_bytes_and_reason(tmp_path):
    spool = EventSpool(tmp_path)
    spool.quarantine(b"\x00garbage", "datagram on /x: truncated datagram")
    [q] = spool.quarantined()
    assert (spool.bad / q.name).read_bytes() == b"\x00garbage"
    assert q.reason == "datagram on /x: truncated datagram" and q.size == 8
    status = spool_status(tmp_path)
    assert (status["pending"], status["quarantined"]) == (0, 1)
    assert status["quarantine"][0]["reason"].endswith("truncated datagram")


def test_missing_or_unusable_spool_is_a_clear_error(tmp_path):
    with pytest.raises(EventSpoolError, match="missing"):
        EventSpool(tmp_path / "nope", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EventSpoolError, match=str(tmp_path / "file")):
        EventSpool(tmp_path / "file")
    assert spool_status(tmp_path / "nope")["exists"] is False


def test_write_failure_leaves_nothing_half_done(tmp_path):
    spool = EventSpool(tmp_path)
    os.chmod(spool.new, 0o500)
    try:
        if os.geteuid() == 0:  # root ignores modes: make the rename fail another way
            os.chmod(spool.new, 0o700)
            spool.new.rmdir()
        with pytest.raises(EventSpoolError, match="cannot write"):
            spool.write_many([EVENTS[0], EVENTS[1]])
        assert os.listdir(spool.tmp) == []
    finally:
        spool.new.mkdir(exist_ok=True)
        os.chmod(spool.new, 0o700)


def _left_in_tmp(spool, name, data, age):
    path = spool.tmp / name
    path.write_bytes(data)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def test_leftovers_of_dead_writers(tmp_path):
    spool = EventSpool(tmp_path)
    _left_in_tmp(spool, "1795000000000000000.76.1", EVENTS[3][:50], age=3600)  # died mid-write
    _left_in_tmp(spool, "1795000000000000000.77.3", EVENTS[4], age=3600)  # written, never renamed
    fresh = _left_in_tmp(spool, "1795000000000000000.78.1", EVENTS[5][:20], age=0)  # being written
    promoted, bad = spool.promote()
    assert [spool.read(n) for n in promoted] == [EVENTS[4]]
    [q] = spool.quarantined()
    assert q.name == bad[0] and "incomplete" in q.reason and "76.1" in q.reason
    assert (spool.bad / q.name).read_bytes() == EVENTS[3][:50]
    assert os.listdir(spool.tmp) == [fresh.name]


WRITER = """
import sys
from vault.ingest.dealer.spool import EventSpool
spool = EventSpool(sys.argv[1])
print("go", flush=True)
i = 0
while True:
    spool.write_many([b'{"event":"X","n":%d,"pad":"%s"}' % (i + k, b"p" * 3000) for k in range(8)])
    i += 8
"""


def test_a_writer_killed_mid_write_leaves_only_whole_events_in_new(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"go\n"
    spool = EventSpool(tmp_path, create=False)
    wait_for(lambda: len(os.listdir(spool.new)) > 100, 20, what="the writer to write")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    numbers = [json.loads(spool.read(n))["n"] for n in spool.pending()]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10))
@settings(max_examples=30, deadline=None)
def test_any_bytes_round_trip(tmp_path_factory, raws):
    spool = EventSpool(tmp_path_factory.mktemp("p"))
    names = spool.write_many(raws)
    assert [spool.read(n) for n in names] == [r.rstrip(b"\r\n\0") for r in raws]
