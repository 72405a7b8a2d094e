"""Live ingest and queue-ID chasing together: mail sent through a real Postfix to the Cyrus
that live ingest watches is traced from Postfix's log to the archived copy, and the link is
confirmed by the LMTP session (Postfix's ``SESSIONID=<...>`` is the MessageNew event's
``vnd.cmu.sessionId``, which the archive records)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

pytestmark = [pytest.mark.cyrus, pytest.mark.postfix]


def test_live_copy_linked_to_the_postfix_route_by_lmtp_session(pipeline_factory, postfix_factory):
    pipeline = pipeline_factory(workers=1)
    cyrus = pipeline.cyrus
    postfix = postfix_factory(cyrus.lmtp_port, domain=cyrus.servername)
    tag = uuid.uuid4().hex[:8]
    user, mid = f"live{tag}", f"live-{tag}@example.invalid"
    cyrus.add_user(user)
    rcpt, sender = f"{user}@{cyrus.servername}", f"erin{tag}@example.invalid"
    raw = (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: live {tag}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\nlive body\r\n"
    ).encode()
    assert postfix.send(sender, [rcpt], raw) == {}
    lines = postfix.wait_log(
        lambda lines: any(f"to=<{rcpt}>" in ln and "status=sent" in ln for ln in lines), seconds=60
    )
    delivery = next(ln for ln in lines if f"to=<{rcpt}>" in ln)
    session_id = re.search(r"SESSIONID=<([^>]+)>", delivery)
    assert session_id, delivery
    session = session_id.group(1)
    pipeline.wait_settled()

    assert pipeline.vaultctl("maillog", "import", str(postfix.maillog)).returncode == 0
    done = pipeline.vaultctl("trace", mid, "--json")
    assert done.returncode == 0, done.stderr
    [route] = json.loads(done.stdout)
    assert [h["session_id"] for h in route["hops"] if h.get("session_id")] == [session]
    [copy] = route["archived"]
    assert (copy["mailbox"], copy["linked_by"]) == (
        f"user/{user}",
        "message-id + LMTP session",
    )  # Cyrus names INBOX user/<u>
    # the item the trace names is the one live ingest recorded for that delivery
    log = json.loads(pipeline.vaultctl("log", "--item", copy["item"], "--json").stdout)
    assert [e["data"].get("session") for e in log if e["kind"] == "message.appended"] == [session]
