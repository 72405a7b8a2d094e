"""Queue-ID chasing on a real Postfix log: mail sent over SMTP to a private Postfix that hands
``@vault.test`` to Cyrus over LMTP, one message delivered, one bounced by Cyrus (550 5.1.1),
then ``vaultctl maillog import`` of Postfix's own maillog_file and ``vaultctl trace``.

Expected values come from elsewhere than the code under test: queue IDs, the session id and
the bounce's queue ID from the raw log lines (simple regexes), the archived copy from the
vault's catalog (Python API) and from Cyrus itself (mailbox uniqueid, UIDVALIDITY, UID).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.core.helpers import init_vault
from vault.archive import Vault
from vault.config import Config
from vault.testing.cli import vaultctl_run

pytestmark = [pytest.mark.postfix, pytest.mark.cyrus]


def message(mid: str, sender: str, rcpt: str, subject: str) -> bytes:
    return (
        f"From: Erin <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n"
        f"Body of {subject}.\r\n"
    ).encode()


def queue_id_of(lines: list[str], mid: str) -> str | None:
    """The queue ID cleanup gave the message with this Message-ID (read off the raw log)."""
    for line in lines:
        m = re.search(r" postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<(.*)>$", line)
        if m and m.group(2) == mid:
            return m.group(1)
    return None


def lines_of(lines: list[str], qid: str | None) -> list[str]:
    return [line for line in lines if qid and f"]: {qid}: " in line]


def imap_uid(cyrus, user: str, mid: str) -> tuple[int, int]:
    """(UIDVALIDITY, UID) of the message with this Message-ID in the user's INBOX, per Cyrus."""
    client = cyrus.imap(user)
    try:
        typ, data = client.select("INBOX", readonly=True)
        assert typ == "OK"
        uidvalidity = int(client.response("UIDVALIDITY")[1][0])
        typ, data = client.uid("SEARCH", "HEADER", "Message-ID", f"<{mid}>")
        assert typ == "OK"
        uids = [int(u) for u in data[0].split()]
    finally:
        client.logout()
    assert len(uids) == 1, uids
    return uidvalidity, uids[0]


def hop_rows(out: str) -> list[tuple[str, str, str, str, str]]:
    """``vaultctl trace`` hop lines as (host, program, queue ID, status, rest of the line)."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"^  (\d{4}-\d\d-\d\dT\S+)  (\S+)\s+(\S+)\s+(\S+)\s+(bounce notice|\S+)\s*(.*)$", line)
        if m and not line.startswith("  archived:"):
            _, host, program, qid, status, rest = m.groups()
            rows.append((host, program, qid, status, rest.strip()))
    return rows


def test_delivered_and_bounced_mail_traced_through_postfix_to_the_archive(
    cyrus_server, postfix_server, tmp_path
):
    tag = uuid.uuid4().hex[:8]
    user = f"pf{tag}"
    cyrus_server.add_user(user)
    rcpt, unknown, sender = f"{user}@vault.test", f"nosuch{tag}@vault.test", f"erin{tag}@example.invalid"
    delivered_mid, bounced_mid = f"pf-sent-{tag}@example.invalid", f"pf-bounce-{tag}@example.invalid"

    assert postfix_server.send(sender, [rcpt], message(delivered_mid, sender, rcpt, "delivered")) == {}
    assert postfix_server.send(sender, [unknown], message(bounced_mid, sender, unknown, "bounced")) == {}

    # ---- wait for the log: delivery, bounce, the non-delivery report's own delivery attempt
    def settled(lines):
        sent, bounced = queue_id_of(lines, delivered_mid), queue_id_of(lines, bounced_mid)
        notice = [
            re.search(r"sender non-delivery notification: ([0-9A-F]+)$", line)
            for line in lines_of(lines, bounced)
        ]
        ndr = next((m.group(1) for m in notice if m), None)
        return (
            any(f"to=<{rcpt}>" in line and "status=sent" in line for line in lines_of(lines, sent))
            and any(
                f"to=<{unknown}>" in line and "status=bounced" in line for line in lines_of(lines, bounced)
            )
            and any(f"to=<{sender}>" in line and "status=" in line for line in lines_of(lines, ndr))
        )

    raw = postfix_server.wait_log(settled, seconds=60)
    sent_qid, bounced_qid = queue_id_of(raw, delivered_mid), queue_id_of(raw, bounced_mid)
    assert sent_qid != bounced_qid
    notification = next(
        line for line in lines_of(raw, bounced_qid) if "sender non-delivery notification" in line
    )
    ndr = re.search(r"notification: ([0-9A-F]+)$", notification)
    assert ndr, notification
    ndr_qid = ndr.group(1)
    lmtp_sent = next(line for line in lines_of(raw, sent_qid) if "postfix/lmtp" in line)
    session_id = re.search(r"SESSIONID=<([^>]+)>", lmtp_sent)
    assert session_id, lmtp_sent
    session = session_id.group(1)
    host = lmtp_sent.split()[3]  # the syslog header's host field
    assert f"relay=127.0.0.1[127.0.0.1]:{cyrus_server.lmtp_port}" in lmtp_sent

    # ---- archive the Cyrus user's INBOX, import the maillog
    home = init_vault(tmp_path / "vault")
    folder = f"user/{user}"  # the INBOX, as Cyrus names it
    r = vaultctl_run(
        home, "import", str(cyrus_server.mailbox_path(f"user/{user}")), "--mailbox", folder, "--json"
    )
    assert r.code == 0, r
    assert (json.loads(r.out)["appended"], json.loads(r.out)["problems"]) == (1, [])
    r = vaultctl_run(home, "maillog", "import", str(postfix_server.maillog), "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["lines"] >= len(raw) and report["unparsed"] == 0, report
    assert report["hops"] >= 13, report  # 5 delivered + 5 bounced (with notice) + 3 NDR

    # the archived copy, per the catalog and per Cyrus
    with Vault.open(Config.load(home)) as vault:
        copies = vault.catalog.items_by_message_id(delivered_mid)
        assert vault.catalog.items_by_message_id(bounced_mid) == []
        assert len(copies) == 1
        item = vault.catalog.item(copies[0]["item"])
    assert item is not None, copies
    uniqueid = next(m["uniqueid"] for m in cyrus_server.mailbox_list() if m["name"] == f"user.{user}")
    assert (item["mailbox"], item["mailbox_id"], (item["uidvalidity"], item["uid"])) == (
        folder,
        uniqueid,
        imap_uid(cyrus_server, user, delivered_mid),
    )

    # ---- the delivered message: smtpd -> cleanup -> qmgr -> lmtp (sent) -> removed, and the copy
    r = vaultctl_run(home, "trace", f"<{delivered_mid}>")
    assert r.code == 0, r
    assert r.out.splitlines()[0] == f"== <{delivered_mid}>  queue IDs {host}:{sent_qid}", r.out
    rows = hop_rows(r.out)
    assert [(h, prog, qid, status) for h, prog, qid, status, _ in rows] == [
        (host, "postfix/smtpd", sent_qid, "received"),
        (host, "postfix/cleanup", sent_qid, "cleanup"),
        (host, "postfix/qmgr", sent_qid, "queued"),
        (host, "postfix/lmtp", sent_qid, "sent"),
        (host, "postfix/qmgr", sent_qid, "removed"),
    ], r.out
    lmtp_rest = rows[3][4]
    assert lmtp_rest.startswith(f"to=<{rcpt}> relay=127.0.0.1[127.0.0.1]:{cyrus_server.lmtp_port} dsn=2.1.5 ")
    assert lmtp_rest.endswith(f"session={session}"), lmtp_rest
    assert rows[2][4] == f"from=<{sender}>", rows[2]
    assert f"  archived: {folder}  item {item['item']}  [message-id]" in r.out.splitlines(), r.out

    # ---- the bounced message: lmtp bounced 5.1.1, the bounce notice, the report's own queue ID
    r = vaultctl_run(home, "trace", f"<{bounced_mid}>", "--json")
    assert r.code == 0, r
    routes = json.loads(r.out)
    assert len(routes) == 1, routes
    route = routes[0]
    assert route["from"] == sender and route["archived"] == []
    assert route["queue_ids"] == sorted([f"{host}:{bounced_qid}", f"{host}:{ndr_qid}"])
    ndr_cleanup = next(line for line in lines_of(raw, ndr_qid) if "postfix/cleanup" in line)
    ndr_message_id = re.search(r"message-id=<(.*)>$", ndr_cleanup)
    assert ndr_message_id, ndr_cleanup
    ndr_mid = ndr_message_id.group(1)
    assert route["message_ids"] == [bounced_mid, ndr_mid]  # its own first, then the report's
    by = {(h["queue_id"], h["program"], h.get("status")): h for h in route["hops"]}
    lmtp = by[(bounced_qid, "postfix/lmtp", "bounced")]
    assert (lmtp["to"], lmtp["dsn"], lmtp["relay"]) == (
        unknown,
        "5.1.1",
        f"127.0.0.1[127.0.0.1]:{cyrus_server.lmtp_port}",
    )
    assert "User unknown" in lmtp["detail"] and "session_id" not in lmtp
    notice = by[(bounced_qid, "postfix/bounce", "bounce notice")]
    assert notice["next_queue_id"] == ndr_qid
    assert by[(ndr_qid, "postfix/qmgr", "queued")]["from_"] == ""  # the report has the null sender
    assert {"to": unknown, "status": "bounced", "dsn": "5.1.1", "host": host} in route["deliveries"]
    assert [d for d in route["deliveries"] if d["to"] == sender]  # the report's attempt to reach the sender
    assert not [h for h in route["hops"] if h["queue_id"] == sent_qid]

    # ---- everything to the recipient: the delivered message, with its archived folder
    r = vaultctl_run(home, "trace", "--user", rcpt)
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[-1] == "1 message(s)", r.out
    assert f"from {sender}  <{delivered_mid}>  {rcpt} sent  archived: {folder}" in lines[0], r.out
