"""Mail logs for the store, trace and CLI tests: the real Postfix log captured beside Cyrus (host
``mx``), and an edge relay (host ``edge``) that handed the same message to ``mx``."""

from __future__ import annotations

from pathlib import Path

from tests.data import data_file

REAL = data_file("cyrus/postfix-maillog.txt")
MESSAGE_ID = "pf-1@example.org"  # in the real log: one recipient delivered, one bounced
MX_QID, NDR_QID, EDGE_QID = "554A416413A", "5B8EC16413D", "1A2B3C4D5E"

EDGE = f"""\
Nov 22 12:57:01 edge postfix/smtpd[100]: connect from outside.example[203.0.113.9]
Nov 22 12:57:01 edge postfix/smtpd[100]: {EDGE_QID}: client=outside.example[203.0.113.9]
Nov 22 12:57:01 edge postfix/cleanup[101]: {EDGE_QID}: message-id=<{MESSAGE_ID}>
Nov 22 12:57:01 edge postfix/qmgr[102]: {EDGE_QID}: from=<erin@example.org>, size=325, nrcpt=2 (queue active)
Nov 22 12:57:05 edge postfix/smtp[103]: {EDGE_QID}: to=<alice@feas.local>, relay=mx.feas.local[192.0.2.25]:25, delay=4.1, delays=0.1/0/2/2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {MX_QID})
Nov 22 12:57:05 edge postfix/qmgr[102]: {EDGE_QID}: removed
Nov 22 13:10:00 edge postfix/smtpd[100]: 9F8E7D6C5B: client=outside.example[203.0.113.9]
Nov 22 13:10:00 edge postfix/cleanup[101]: 9F8E7D6C5B: message-id=<other@example.net>
Nov 22 13:10:00 edge postfix/qmgr[102]: 9F8E7D6C5B: from=<bob@example.net>, size=900, nrcpt=1 (queue active)
Nov 22 13:10:01 edge postfix/smtp[103]: 9F8E7D6C5B: to=<carol@example.com>, relay=mx.example.com[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.1, status=deferred (connect to mx.example.com[198.51.100.7]:25: Connection refused)
"""


def write_logs(directory: Path) -> tuple[Path, Path]:
    """``(mx, edge)`` log files in ``directory``."""
    mx, edge = directory / "mx.log", directory / "edge.log"
    mx.write_text(REAL.read_text())
    edge.write_text(EDGE)
    return mx, edge
