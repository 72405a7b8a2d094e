"""Mail log lines into hops: the real Postfix lines captured beside Cyrus (expected values read
off the lines by hand), Sendmail and Cyrus shapes, the three syslog headers, year rollover,
and random garbage that is counted, never raised."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.data import data_file
from vault.trace.maillog import LineParser

REAL = data_file("cyrus/postfix-maillog.txt")


def parser(reference=datetime(2026, 11, 23, tzinfo=UTC)):
    return LineParser(reference=reference, zone=UTC)


def real_hops():
    p = parser()
    with open(REAL) as f:
        hops = [h for h in (p.parse(line) for line in f) if h]
    return p, hops


def test_real_postfix_log():
    p, hops = real_hops()
    assert p.stats.lines == 19 and p.stats.hops == 11 and not p.stats.unparsed
    by = {(h.program, h.queue_id, h.status, h.to): h for h in hops}
    client = by[("postfix/smtpd", "554A416413A", "received", None)]
    assert client.relay == "localhost[127.0.0.1]" and client.host == "mx"
    assert client.time == "2026-11-22T12:57:06.000000Z"
    cleanup = by[("postfix/cleanup", "554A416413A", "cleanup", None)]
    assert cleanup.message_id == "pf-1@example.org"
    queued = by[("postfix/qmgr", "554A416413A", "queued", None)]
    assert (queued.from_, queued.size) == ("erin@example.org", 325)
    bounced = by[("postfix/lmtp", "554A416413A", "bounced", "nosuchuser@feas.local")]
    assert (bounced.dsn, bounced.delay, bounced.relay) == ("5.1.1", 0.03, "127.0.0.1[127.0.0.1]:2003")
    assert bounced.detail.endswith("User unknown (in reply to RCPT TO command)")
    sent = by[("postfix/lmtp", "554A416413A", "sent", "alice@feas.local")]
    assert sent.session_id == "feascyrus-1795352226-13167-1-16417845928525351025" and sent.dsn == "2.1.5"
    notice = by[("postfix/bounce", "554A416413A", "bounce notice", None)]
    assert notice.next_queue_id == "5B8EC16413D"
    ndr = by[("postfix/qmgr", "5B8EC16413D", "queued", None)]
    assert ndr.from_ == "" and ndr.size == 2520
    assert ("postfix/qmgr", "554A416413A", "removed", None) in by


def test_sendmail_lines():
    p = parser()
    received = p.parse(
        "Sep 29 12:22:42 relay sm-mta[12345]: t8TCMg9Q012345: from=<alice@example.com>, size=1234, "
        "class=0, nrcpts=1, msgid=<abc@example.com>, proto=ESMTP, daemon=MTA, relay=host.example.com [192.0.2.1]"
    )
    assert (received.queue_id, received.from_, received.message_id, received.size) == (
        "t8TCMg9Q012345",
        "alice@example.com",
        "abc@example.com",
        1234,
    )
    sent = p.parse(
        "Sep 29 12:22:43 relay sm-mta[12346]: t8TCMg9Q012345: to=<bob@example.org>, delay=1+02:03:04, "
        "xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.2], dsn=2.0.0, "
        "stat=Sent (Ok: queued as 3F2A1C0B)"
    )
    assert (sent.to, sent.status, sent.dsn, sent.next_queue_id) == (
        "bob@example.org",
        "sent",
        "2.0.0",
        "3F2A1C0B",
    )
    assert sent.delay == 86400 + 2 * 3600 + 3 * 60 + 4


def test_cyrus_lmtpd_line_and_headers():
    p = parser()
    iso = p.parse(
        "2026-11-22T18:59:03.239702+00:00 vm cyrus/lmtp[29387]: Delivered: <probe-1@x> to mailbox: user.alice"
    )
    assert (iso.program, iso.message_id, iso.to, iso.status) == (
        "cyrus/lmtp",
        "probe-1@x",
        "user.alice",
        "delivered",
    )
    assert iso.time == "2026-11-22T18:59:03.239702Z"
    rfc5424 = p.parse("<22>1 2026-11-22T12:57:06.123+01:00 mx postfix/qmgr 16220 - - 554A416413A: removed")
    assert (rfc5424.host, rfc5424.status, rfc5424.time) == ("mx", "removed", "2026-11-22T11:57:06.123000Z")
    # Postfix's own lmtp client is not Cyrus's lmtpd, whatever the syslog name
    pf = p.parse(
        "Nov 22 12:57:06 mx postfix-out/lmtp[1]: 554A416413A: to=<a@b>, relay=x, delay=1, dsn=2.0.0, status=sent (ok)"
    )
    assert pf.status == "sent" and pf.to == "a@b"


def test_year_is_inferred_and_rolls_over():
    january = parser(datetime(2027, 1, 2, 8, tzinfo=UTC))
    december = january.parse("Dec 31 23:59:59 mx postfix/qmgr[1]: 554A416413A: removed")
    new_year = january.parse("Jan  1 00:00:01 mx postfix/qmgr[1]: 554A416413A: removed")
    assert december.time.startswith("2026-12-31T23:59:59") and new_year.time.startswith("2027-01-01T00:00:01")


def test_local_time_zone_is_applied():
    berlin = LineParser(
        reference=datetime(2026, 11, 23, tzinfo=UTC), zone=__import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    hop = berlin.parse("Nov 22 12:57:06 mx postfix/qmgr[1]: 554A416413A: removed")
    assert hop is not None
    assert hop.time == "2026-11-22T11:57:06.000000Z"


def test_garbage_is_counted_by_reason():
    p = parser()
    for line in [
        "",
        "garbage",
        "Foo 99 99:99:99 mx postfix/qmgr[1]: x",
        "Nov 22 12:57:06 mx kernel: eth0 up",
        "Nov 31 12:57:06 mx postfix/qmgr[1]: 554A416413A: removed",
        "Nov 22 12:57:06 mx postfix/smtpd[1]: connect from localhost[127.0.0.1]",
    ]:
        assert p.parse(line) is None
    assert p.stats.lines == 6 and p.stats.hops == 0
    assert sum(p.stats.unparsed.values()) + sum(p.stats.ignored.values()) == 6
    assert p.stats.unparsed["no syslog header"] == 2


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_random_lines_never_raise(line):
    p = parser()
    p.parse(line)
    assert p.stats.lines == 1


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(open(REAL).read().splitlines()), st.integers(0, 400), st.text(max_size=20))
def test_truncated_and_mangled_real_lines_never_raise(line, cut, junk):
    p = parser()
    p.parse(line[:cut] + junk)
    assert p.stats.lines == 1
