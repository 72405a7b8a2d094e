"""Every handler on the events a real Cyrus 3.6 emitted for real IMAP/LMTP steps, applied to a
real vault through the collector; the archive's state is then compared with the server's."""

from __future__ import annotations

import hashlib
import imaplib
import json
import re
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.ingest.collector.test_collector_cyrus import imap_view, uniqueid
from tests.ingest.worker.live import LiveArchive, quiet, wait_for_event
from vault.model import ItemId, format_time

pytestmark = pytest.mark.cyrus


def mail(subject: str) -> bytes:
    return (
        f"From: Dave <dave@example.org>\r\nTo: alice@vault.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
        f"\r\nBody of {subject}.\r\n"
    ).encode()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def appenduid(response) -> int:
    found = re.search(rb"APPENDUID \d+ (\d+)", response[1][0])
    assert found, response
    return int(found.group(1))


@pytest.fixture
def archive(tmp_path, cyrus_factory):
    server = cyrus_factory()
    live = LiveArchive(tmp_path / "vault", server)
    yield live
    live.close()


def test_every_event_type_on_a_real_server(archive):
    server = archive.cyrus
    alice = server.imap("alice")
    when = imaplib.Time2Internaldate(time.time() - 5 * 86400)
    assert alice.create("INBOX/Work")[0] == "OK"
    assert alice.subscribe("INBOX/Work")[0] == "OK"
    delivered = mail("delivered")
    server.lmtp_deliver("alice", delivered)
    appended = mail("appended")
    assert appenduid(alice.append("INBOX/Work", r"(\Seen $Label)", when, appended)) == 1
    alice.select("INBOX")
    assert alice.uid("STORE", "1", "+FLAGS", r"(\Flagged $Custom)")[0] == "OK"
    assert alice.uid("STORE", "1", "-FLAGS", r"(\Flagged)")[0] == "OK"
    assert alice.uid("FETCH", "1", "(BODY[])")[0] == "OK"  # sets \Seen: MessageRead
    assert alice.uid("COPY", "1", "INBOX/Work")[0] == "OK"  # Work UID 2
    moved = mail("moved")
    server.lmtp_deliver("alice", moved)  # INBOX UID 2
    assert alice.uid("MOVE", "2", "INBOX/Work")[0] == "OK"  # Work UID 3
    alice.select("INBOX/Work")
    assert alice.uid("STORE", "1", "+FLAGS", r"(\Deleted)")[0] == "OK"  # MessageTrash
    assert alice.expunge()[0] == "OK"
    alice.unselect()
    assert alice.rename("INBOX/Work", "INBOX/Work2")[0] == "OK"
    assert alice.setacl("INBOX/Work2", "bob", "lrs")[0] == "OK"
    assert alice.create("INBOX/Tmp")[0] == "OK"
    assert alice.delete("INBOX/Tmp")[0] == "OK"
    assert alice.unsubscribe("INBOX/Work")[0] == "OK"
    admin = server.imap(server.admin)
    assert admin.setquota("user/alice", "(STORAGE 100000)")[0] == "OK"
    admin.logout()
    alice.logout()
    wait_for_event(server, lambda e: e["event"] == "Logout" and e.get("user") == "alice")
    quiet(server)

    events = archive.feed_new_hook_events()
    assert archive.quarantined == [] and archive.postponed == []
    names = {e["event"] for e in events}
    assert names >= {
        "Login",
        "Logout",
        "MailboxCreate",
        "MailboxSubscribe",
        "MailboxUnSubscribe",
        "MessageNew",
        "MessageAppend",
        "FlagsSet",
        "FlagsClear",
        "MessageRead",
        "vnd.cmu.MessageCopy",
        "vnd.cmu.MessageMove",
        "MessageTrash",
        "MessageExpunge",
        "MailboxRename",
        "AclChange",
        "MailboxDelete",
        "QuotaChange",
        "MailboxModseq",
    }
    assert len(archive.handled) == len(events)

    catalog = archive.vault.catalog
    inbox, work = uniqueid(server, "user/alice"), uniqueid(server, "user/alice/Work2")
    # the folder kept its identity through the rename; its ACL is the server's
    folder = catalog.folder(work)
    assert [n["name"] for n in folder["names"]] == ["user/alice/Work", "user/alice/Work2"]
    assert json.loads(folder["acl"]) == {"alice": "lrswipkxtecdan", "bob": "lrs"}
    assert catalog.folder_id("user/alice/Work") == work
    tmp = catalog.folder_id("user/alice/Tmp")
    assert tmp and catalog.folder(tmp)["deleted_at"] is not None

    # every message's bytes are the server's, flags and presence match the server's view
    client = server.imap("alice")
    try:
        for mailbox_id, name in ((inbox, "INBOX"), (work, "INBOX/Work2")):
            view = imap_view(client, name)
            live = {i["uid"]: i for i in catalog.live_items(mailbox_id)}
            assert sorted(live) == sorted(view)
            for uid, seen in view.items():
                assert sorted(live[uid]["flags"]) == seen["flags"]
                assert live[uid]["internal_date"] == seen["internal_date"]
                typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
                assert archive.vault.store.get(live[uid]["blob"]) == data[0][1]
    finally:
        client.logout()

    uv_inbox, uv_work = catalog.folder(inbox)["uidvalidity"], folder["uidvalidity"]
    first = str(ItemId(inbox, uv_inbox, 1))
    log = archive.log("--item", first)
    assert [e["kind"] for e in log] == ["message.appended", "flags.set", "flags.cleared", "flags.set"]
    assert [e["data"]["flags"] for e in log[1:]] == [["$Custom", "\\Flagged"], ["\\Flagged"], ["\\Seen"]]
    assert all(e["actor"] == "alice" for e in log[1:])

    expunged = catalog.item(str(ItemId(work, uv_work, 1)))
    assert expunged["expunged_at"] and expunged["blob"] == sha(appended)
    internal_date = imaplib.Internaldate2tuple(b"INTERNALDATE " + when.encode())
    assert internal_date, when
    assert expunged["internal_date"] == format_time(datetime.fromtimestamp(time.mktime(internal_date), UTC))
    assert [e["kind"] for e in archive.log("--item", expunged["item"])] == [
        "message.appended",
        "flags.set",
        "message.expunged",
    ]
    copy = archive.log("--item", str(ItemId(work, uv_work, 2)))[0]
    assert copy["kind"] == "message.copied" and copy["data"]["source"] == first
    assert copy["data"]["blob"] == catalog.item(first)["blob"]
    move = archive.log("--item", str(ItemId(work, uv_work, 3)))[0]
    # lmtpd prepends Return-Path, Received and X-Cyrus-Session-Id to what it stores
    assert move["kind"] == "message.moved"
    assert archive.vault.store.get(move["data"]["blob"]).endswith(moved)
    assert catalog.item(str(ItemId(inbox, uv_inbox, 2)))["expunged_at"] is not None

    # Login and Logout are one session, with its duration
    logouts = [e for e in events if e["event"] == "Logout" and e["user"] == "alice"]
    session = catalog.session(f"session:{logouts[0]['vnd.cmu.sessionId']}")
    assert session["user"] == "alice" and session["login_at"] < session["logout_at"]
    logout = archive.log("--item", f"session:{logouts[0]['vnd.cmu.sessionId']}")
    assert [e["kind"] for e in logout] == ["session.login", "session.logout"]
    assert logout[1]["data"]["login_time"] == session["login_at"]
    assert 0 < logout[1]["data"]["duration_seconds"] < 600

    kinds = [e["kind"] for e in archive.log("--mailbox", "user/alice/Work2")]
    assert {
        "folder.created",
        "folder.subscribed",
        "folder.renamed",
        "folder.acl",
        "folder.unsubscribed",
    } <= set(kinds)
    assert "quota.changed" in [e["kind"] for e in archive.log("--mailbox", "user/alice")]
