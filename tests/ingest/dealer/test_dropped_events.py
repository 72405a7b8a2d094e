"""Events the vault records nothing for (Cyrus's MailboxModseq, one per delivery) are answered and
dropped by the dealer in every mode: never journalled, spooled or shipped."""

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.ingest.dealer.helpers import (
    TestBroker,
    datagram,
    dlist_frames,
    event_lines,
    frame_message,
    wait_for,
)
from tests.ingest.dealer.test_listeners import dealer, notify, send_datagram, stored
from vault.ingest.broker.jobs import NOTHING_TO_RECORD
from vault.ingest.cyrus.notify import Notification, encode_dlist_notify
from vault.ingest.dealer.hook_log import HookLog
from vault.ingest.dealer.spool import DROPPED_EVENTS, EventSpool, dropped

EVENTS = event_lines()
MODSEQ = [e for e in EVENTS if json.loads(e)["event"] == "MailboxModseq"]
OTHERS = [e for e in EVENTS if json.loads(e)["event"] != "MailboxModseq"]


@pytest.fixture
def short_dir():
    d = tempfile.mkdtemp(prefix="dd-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_only_events_the_broker_would_record_nothing_for_are_dropped():
    assert set(DROPPED_EVENTS) <= set(NOTHING_TO_RECORD)


def test_every_real_sample_is_told_apart_by_its_bytes():
    samples = EVENTS + [frame_message(f) for f in dlist_frames()]
    assert {json.loads(raw)["event"] for raw in samples if dropped(raw)} == set(DROPPED_EVENTS)
    assert all(json.loads(raw)["event"] not in DROPPED_EVENTS for raw in samples if not dropped(raw))
    # spelt otherwise than Cyrus does: kept (safe)
    assert not dropped(json.dumps(json.loads(MODSEQ[0])).encode())


def test_stream_answers_a_dropped_event_and_keeps_order_for_the_rest(short_dir):
    with TestBroker() as broker, dealer("stream", short_dir, broker=broker.address) as d:
        path = str(d.settings.listen)
        for raw in EVENTS:
            assert notify(path, encode_dlist_notify(Notification(raw, "external", "EVENT"))) == b"OK NIL\r\n"
        wait_for(lambda: len(broker.received) == len(OTHERS), what="shipping")
        # two frames on one connection, a dropped one after a kept one: answered in order
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(b"".join(encode_dlist_notify(Notification(raw)) for raw in (OTHERS[0], MODSEQ[0])))
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += s.recv(100)
        assert reply == b"OK NIL\r\n" * 2
        assert d.listener.dropped == len(MODSEQ) + 1
        wait_for(lambda: d.journaled.journal.checkpoint_seq == d.journaled.journal.seq, what="the checkpoint")
        assert d.journaled.journal.seq == len(OTHERS) + 1  # journalled: only what is kept
    assert broker.raws() == OTHERS + [OTHERS[0]] or broker.raws() == OTHERS  # resent bytes dedup


def test_datagrams_of_dropped_events_are_not_spooled(short_dir):
    with dealer("socket", short_dir) as d:
        for raw in MODSEQ + OTHERS[:3]:
            send_datagram(str(d.settings.listen), datagram(raw))
        wait_for(lambda: len(d.spool.pending()) == 3, what="the datagrams")
        wait_for(lambda: d.listener.dropped == len(MODSEQ), what="the dropped ones counted")
    assert stored(d.spool) == OTHERS[:3]


def test_the_hook_log_skips_dropped_events(tmp_path):
    spool = EventSpool(tmp_path)
    (tmp_path / "hook.log").write_bytes(b"".join(e + b"\n" for e in EVENTS[:12]))
    spooled, bad = HookLog(spool, grace=0).collect()
    assert [spool.read(n) for n in spool.pending()] == [e for e in EVENTS[:12] if e not in MODSEQ]
    assert len(spooled) == len(spool.pending()) and bad == []
    assert Path(tmp_path / "new").exists()
