"""The daemon's listeners over real unix sockets: acks after durability, quarantine, no stalls."""

import json
import os
import pwd
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ingest.dealer.helpers import (
    DealerProcess,
    TestBroker,
    as_user,
    datagram,
    dealer_curve,
    dlist_frames,
    event_lines,
    frame_message,
    wait_for,
)
from vault.ingest.cyrus.notify import Notification, encode_dlist_notify
from vault.ingest.dealer.dealer import Dealer, DealerSettings
from vault.ingest.dealer.listeners import SpoolWriter
from vault.ingest.dealer.spool import EventSpool, dropped
from vault.testing.net import free_port

EVENTS = event_lines()
FRAMES = dlist_frames()
# what the dealer keeps: MailboxModseq is answered and dropped (spool.DROPPED_EVENTS)
KEPT_EVENTS = [e for e in EVENTS if not dropped(e)]
KEPT_FRAMES = [f for f in FRAMES if not dropped(frame_message(f))]


@pytest.fixture
def short_dir():
    # unix socket paths must stay under 108 bytes; pytest's tmp paths can be longer
    d = tempfile.mkdtemp(prefix="dl-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Running:
    def __init__(self, settings):
        self.dealer = Dealer(settings)
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=self.dealer.run,
            kwargs={"ready": lambda d: self.ready.set(), "handle_signals": False},
            daemon=True,
        )

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10), "dealer did not start"
        return self.dealer

    def __exit__(self, *exc):
        self.dealer.stop()
        self.thread.join(10)


def dealer(mode, short_dir, broker="", **kw):
    return Running(
        DealerSettings(
            mode=mode,
            spool=Path(short_dir, "spool"),
            broker=broker,
            listen=Path(short_dir, "n.sock"),
            curve=dealer_curve() if broker else None,
            **kw,
        )
    )


def notify(path, frame: bytes, chunk: int = 0) -> bytes:
    """Be Cyrus for one event: connect, send the frame, read the one-line reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        if chunk:
            for i in range(0, len(frame), chunk):
                s.sendall(frame[i : i + chunk])
                time.sleep(0.001)
        else:
            s.sendall(frame)
        reply = b""
        while not reply.endswith(b"\r\n"):
            got = s.recv(100)
            if not got:
                break
            reply += got
        return reply


def send_datagram(path, data: bytes):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(data, path)


def stored(spool: EventSpool) -> list[bytes]:
    return [spool.read(n) for n in spool.pending()]


# ---------------------------------------------------------------------------- stream
def test_stream_acks_each_real_frame_and_spools_all_but_the_dropped(short_dir):
    with dealer("stream", short_dir) as d:
        for frame in FRAMES:
            assert notify(str(d.settings.listen), frame) == b"OK NIL\r\n"
        assert notify(str(d.settings.listen), FRAMES[1], chunk=7) == b"OK NIL\r\n"
    assert stored(d.spool) == [frame_message(f) for f in KEPT_FRAMES + [FRAMES[1]]]
    assert d.listener.dropped == len(FRAMES) - len(KEPT_FRAMES) > 0


def test_stream_carries_events_far_beyond_the_datagram_limit(short_dir):
    message = json.dumps(
        {"event": "MessageExpunge", "vnd.cmu.midset": [f"<m{i}-{'x' * 70}@e>" for i in range(2000)]}
    ).encode()
    with dealer("stream", short_dir) as d:
        assert (
            notify(
                str(d.settings.listen),
                encode_dlist_notify(Notification(message, "external", "EVENT")),
                chunk=65536,
            )
            == b"OK NIL\r\n"
        )
    assert stored(d.spool) == [message] and len(message) > 150_000


def test_stream_garbage_is_refused_quarantined_and_the_listener_lives_on(short_dir):
    with dealer("stream", short_dir) as d:
        path = str(d.settings.listen)
        reply = notify(path, b"HELLO there\r\n")
        assert reply.startswith(b'NO "') and b"NOTIFY expected" in reply
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # Cyrus dies mid-frame
            s.connect(path)
            s.sendall(FRAMES[0][:200])
        wait_for(lambda: len(d.spool.quarantined()) == 2, what="both quarantined")
        assert notify(path, KEPT_FRAMES[0]) == b"OK NIL\r\n"
    reasons = sorted(q.reason for q in d.spool.quarantined())
    assert "middle of a frame" in " ".join(reasons) and "NOTIFY expected" in " ".join(reasons)
    assert {(d.spool.bad / q.name).read_bytes() for q in d.spool.quarantined()} == {
        b"HELLO there\r\n",
        FRAMES[0][:200],
    }
    assert len(stored(d.spool)) == 1


def test_stream_many_concurrent_connections(short_dir):
    frames = [
        encode_dlist_notify(Notification(json.dumps({"event": "MessageNew", "n": i}).encode()))
        for i in range(300)
    ]
    with dealer("stream", short_dir) as d:
        with ThreadPoolExecutor(24) as pool:
            replies = list(pool.map(lambda f: notify(str(d.settings.listen), f), frames))
    assert replies == [b"OK NIL\r\n"] * 300
    assert sorted(json.loads(r)["n"] for r in stored(d.spool)) == list(range(300))


def test_a_dead_broker_never_delays_the_ack(short_dir):
    nobody = f"tcp://127.0.0.1:{free_port()}"
    with dealer("stream", short_dir, broker=nobody, ack_timeout=0.1) as d:
        for i in range(100):
            assert notify(str(d.settings.listen), KEPT_FRAMES[i % len(KEPT_FRAMES)]) == b"OK NIL\r\n"
    assert len(d.spool.pending()) == 100


def test_stream_events_reach_the_broker_and_leave_the_spool(short_dir):
    with TestBroker() as broker, dealer("stream", short_dir, broker=broker.address) as d:
        for frame in FRAMES:
            assert notify(str(d.settings.listen), frame) == b"OK NIL\r\n"
        wait_for(
            lambda: len(broker.received) == len(KEPT_FRAMES) and d.spool.pending() == [], what="shipping"
        )
    assert broker.raws() == [frame_message(f) for f in KEPT_FRAMES]


def test_events_acked_in_time_never_become_spool_files(short_dir):
    with TestBroker() as broker, dealer("stream", short_dir, broker=broker.address, ship_grace=10.0) as d:
        for frame in FRAMES:
            assert notify(str(d.settings.listen), frame) == b"OK NIL\r\n"
        wait_for(
            lambda: len(broker.received) == len(KEPT_FRAMES) and d.shipper.in_flight == 0, what="shipping"
        )
        wait_for(lambda: d.journaled.journal.checkpoint_seq == d.journaled.journal.seq, what="the checkpoint")
        assert d.journaled.files_written == 0 and d.spool.pending() == []
    assert d.spool.pending() == [] and len(set(broker.ids())) == len(KEPT_FRAMES)


def test_events_not_acked_in_time_are_spooled_then_removed_once_acked(short_dir):
    acking = threading.Event()
    with (
        TestBroker(acking=lambda eid: acking.is_set()) as broker,
        dealer("stream", short_dir, broker=broker.address, ship_grace=0.1, ack_timeout=0.3) as d,
    ):
        for frame in FRAMES:
            assert notify(str(d.settings.listen), frame) == b"OK NIL\r\n"
        wait_for(lambda: len(d.spool.pending()) == len(KEPT_FRAMES), what="the unacked events to be spooled")
        assert [json.loads(r)["event"] for r in stored(d.spool)] == [
            json.loads(r)["event"] for r in broker.raws()
        ]
        wait_for(lambda: d.journaled.journal.checkpoint_seq == d.journaled.journal.seq, what="the checkpoint")
        acking.set()
        wait_for(
            lambda: d.spool.pending() == [] and d.shipper.in_flight == 0, what="late acks to clear the spool"
        )
    assert d.spool.pending() == [] and len(set(broker.ids())) == len(KEPT_FRAMES)  # resent, never lost


# ---------------------------------------------------------------------------- datagram
def test_datagrams_spooled_truncated_ones_quarantined(short_dir):
    with dealer("socket", short_dir) as d:
        path = str(d.settings.listen)
        for line in EVENTS:
            send_datagram(path, datagram(line))
        send_datagram(path, datagram(EVENTS[0])[:-20])  # what Cyrus does past ~21 KB
        send_datagram(path, b"\xff\xfe")
        wait_for(
            lambda: len(d.spool.pending()) == len(KEPT_EVENTS) and len(d.spool.quarantined()) == 2,
            what="all datagrams handled",
        )
        send_datagram(path, datagram(EVENTS[1]))
        wait_for(lambda: len(d.spool.pending()) == len(KEPT_EVENTS) + 1, what="the listener to carry on")
    assert stored(d.spool) == KEPT_EVENTS + [EVENTS[1]]
    assert d.listener.dropped == len(EVENTS) - len(KEPT_EVENTS) > 0
    reasons = {q.reason.split(": ", 1)[1] for q in d.spool.quarantined()}
    assert any("truncated" in r for r in reasons) and len(reasons) == 2


def test_the_datagram_writer_commits_what_arrived_within_its_gather_time_at_once(tmp_path):
    batches: list[list[bytes]] = []
    writer = SpoolWriter(EventSpool(tmp_path), batches.append, gather=0.3)
    first = writer.submit(b"1")
    time.sleep(0.05)  # Cyrus's pace: one by one
    rest = [writer.submit(str(n).encode()) for n in range(2, 6)]
    for future in [first, *rest]:
        future.result(10)
    writer.close()
    assert batches == [[b"1", b"2", b"3", b"4", b"5"]]


def test_datagram_burst(short_dir):
    with dealer("socket", short_dir) as d:
        path = str(d.settings.listen)
        for i in range(2000):
            send_datagram(path, datagram(json.dumps({"event": "FlagsSet", "n": i}).encode()))
        wait_for(lambda: len(d.spool.pending()) == 2000, 30, what="the burst to be spooled")
    assert [json.loads(r)["n"] for r in stored(d.spool)] == list(range(2000))


def test_cli_daemon_socket_reachable_by_user_cyrus(short_dir):
    os.chmod(short_dir, 0o755)
    sock = os.path.join(short_dir, "n.sock")
    spool = os.path.join(short_dir, "spool")
    with DealerProcess(
        "--mode", "socket", "--listen", sock, "--spool", spool, "--no-ship", "--socket-owner", "cyrus"
    ):
        st = os.stat(sock)
        assert st.st_uid == pwd.getpwnam("cyrus").pw_uid and st.st_mode & 0o777 == 0o660
        assert as_user("cyrus", lambda: send_datagram(sock, datagram(EVENTS[2]))) == 0
        wait_for(lambda: stored(EventSpool(spool)) == [EVENTS[2]], what="cyrus's datagram")
    assert not os.path.exists(sock)  # removed on SIGTERM


@pytest.mark.parametrize("sync", ["--sync", "--no-sync"])
def test_every_acked_event_survives_a_sigkill_right_after_its_ack(short_dir, sync):
    # --no-sync ([dealer] sync = false) trades only a power loss: a dead dealer loses nothing
    sock, spool = os.path.join(short_dir, "n.sock"), os.path.join(short_dir, "spool")
    sent = [json.dumps({"event": "MessageNew", "n": i}).encode() for i in range(400)]
    proc = DealerProcess(
        "--mode", "stream", "--listen", sock, "--spool", spool, "--no-ship", "--socket-owner", "", sync
    )
    proc.start()
    try:
        for raw in sent:
            assert notify(sock, encode_dlist_notify(Notification(raw))) == b"OK NIL\r\n"
    finally:
        proc.kill()
    with DealerProcess(
        "--mode", "stream", "--listen", sock, "--spool", spool, "--no-ship", "--socket-owner", ""
    ):
        pass  # recovery happens before it says ready
    got = stored(EventSpool(spool))
    assert set(got) == set(sent)  # (recovery may spool an event twice: the broker deduplicates)
