"""The end-to-end story (issue 3 item 6), told to a real Cyrus, and what the archive must
show afterwards: shared by the in-process run (handlers applied directly) and the full run
(dealer -> broker -> workers)."""

from __future__ import annotations

import email.utils
import imaplib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.ingest.collector.test_collector_cyrus import uniqueid
from vault.model import ItemId, format_time
from vault.testing.cli import vaultctl


def mail(subject: str) -> bytes:
    return (
        f"From: Erin <erin@example.org>\r\nTo: alice@vault.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n"
        f"Date: {email.utils.format_datetime(datetime.now(UTC))}\r\n\r\n"
        f"The text of {subject}.\r\n"
    ).encode()


@dataclass
class Story:
    appended: bytes = b""
    appended_date: str = ""  # vault time of the APPEND's internal date
    delivered: bytes = b""
    moved: bytes = b""
    doomed: bytes = b""
    before_expunge: str = ""  # vault time between the move and the expunge
    ids: dict = field(default_factory=dict)  # folder name -> mailboxID
    uidvalidity: dict = field(default_factory=dict)
    session: str = ""  # alice's IMAP session id (Cyrus's vnd.cmu.sessionId)

    def item(self, folder: str, uid: int) -> str:
        return str(ItemId(self.ids[folder], self.uidvalidity[folder], uid))


def tell(server) -> Story:
    """Deliver over LMTP, APPEND over IMAP, set and clear flags, copy, move, expunge, rename and
    delete a folder, log in and out."""
    story = Story()
    alice = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
    typ, data = alice.login("alice", server.password("alice"))
    session = re.search(rb"SESSIONID=<([^>]+)>", data[0])
    assert session, data
    story.session = session.group(1).decode()
    assert alice.create("INBOX/Project")[0] == "OK"
    assert alice.create("INBOX/Old")[0] == "OK"
    story.delivered = mail("delivered")
    server.lmtp_deliver("alice", story.delivered)  # INBOX UID 1
    story.appended = mail("appended")
    when = time.time() - 3 * 86400
    story.appended_date = format_time(datetime.fromtimestamp(int(when), UTC))
    assert (
        alice.append(
            "INBOX/Project", r"(\Flagged $Important)", imaplib.Time2Internaldate(when), story.appended
        )[0]
        == "OK"
    )  # Project UID 1
    story.doomed = mail("in a folder that will be deleted")
    assert alice.append("INBOX/Old", None, None, story.doomed)[0] == "OK"
    alice.select("INBOX/Project")
    assert alice.uid("STORE", "1", "+FLAGS", r"(\Answered)")[0] == "OK"
    assert alice.uid("STORE", "1", "-FLAGS", r"(\Flagged)")[0] == "OK"
    alice.select("INBOX")
    assert alice.uid("COPY", "1", "INBOX/Project")[0] == "OK"  # Project UID 2
    story.moved = mail("moved")
    server.lmtp_deliver("alice", story.moved)  # INBOX UID 2
    alice.select("INBOX")
    assert alice.uid("MOVE", "2", "INBOX/Project")[0] == "OK"  # Project UID 3
    time.sleep(1.1)  # event times have millisecond resolution: leave a clear gap
    story.before_expunge = format_time(datetime.now(UTC))
    time.sleep(1.1)
    alice.select("INBOX/Project")
    assert alice.uid("STORE", "1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert alice.expunge()[0] == "OK"
    alice.unselect()
    assert alice.rename("INBOX/Project", "INBOX/Project2")[0] == "OK"
    for folder in ("user/alice", "user/alice/Project2", "user/alice/Old"):
        story.ids[folder] = uniqueid(server, folder)
        imap_name = "INBOX" + folder[len("user/alice") :]
        status = alice.status(imap_name, "(UIDVALIDITY)")[1][0]
        uidvalidity = re.search(rb"UIDVALIDITY (\d+)", status)
        assert uidvalidity, status
        story.uidvalidity[folder] = int(uidvalidity.group(1))
    assert alice.delete("INBOX/Old")[0] == "OK"
    assert alice.logout()[0] == "BYE"
    return story


def log(home: Path, *args: str) -> list[dict]:
    done = vaultctl(home, "log", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def check_changelog(home: Path, story: Story) -> None:
    """The ledger holds every item's full changelog."""
    project = "user/alice/Project2"
    kinds = lambda item: [(e["kind"], e["data"].get("flags")) for e in log(home, "--item", item)]  # noqa: E731
    assert kinds(story.item(project, 1)) == [
        ("message.appended", ["$Important", "\\Flagged"]),
        ("flags.set", ["\\Answered"]),
        ("flags.cleared", ["\\Flagged"]),
        ("flags.set", ["\\Deleted"]),
        ("message.expunged", None),
    ]
    first = story.item("user/alice", 1)
    copy = log(home, "--item", story.item(project, 2))
    assert [e["kind"] for e in copy] == ["message.copied"] and copy[0]["data"]["source"] == first
    assert [e["kind"] for e in log(home, "--item", first)] == ["message.appended"]
    moved = log(home, "--item", story.item(project, 3))
    assert [e["kind"] for e in moved] == ["message.moved"]
    assert moved[0]["data"]["source"] == story.item("user/alice", 2)
    assert [e["kind"] for e in log(home, "--item", story.item("user/alice", 2))] == [
        "message.appended",
        "message.expunged",
    ]
    assert [e["kind"] for e in log(home, "--item", story.item("user/alice/Old", 1))] == [
        "message.appended",
        "message.expunged",
    ]
    folder = [e["kind"] for e in log(home, "--mailbox", "user/alice/Old")]
    assert folder[0] == "folder.created" and folder[-1] == "folder.deleted"
    renamed = [e for e in log(home, "--mailbox", "user/alice/Project") if e["kind"] == "folder.renamed"]
    assert [(e["data"]["old"], e["data"]["name"]) for e in renamed] == [
        ("user/alice/Project", "user/alice/Project2")
    ]
    every = log(home, "--mailbox", "user/alice")  # the INBOX's log
    assert all(e["data"]["event"] for e in every)
    session = log(home, "--item", f"session:{story.session}")
    assert [e["kind"] for e in session] == ["session.login", "session.logout"]
    assert session[1]["data"]["login_time"] == session[0]["time"]
    assert session[1]["data"]["duration_seconds"] > 2  # the story sleeps 2.2 s while logged in


def check_restore(home: Path, server, story: Story, tmp_path: Path) -> None:
    """restore --mailbox <renamed folder> --at <before the expunge> gives the expunged message
    back byte-identical, to maildir: and to imap:// (APPEND with flags and internal date)."""
    maildir = tmp_path / "restored"
    done = vaultctl(
        home,
        "restore",
        "--mailbox",
        "user/alice/Project2",
        "--at",
        story.before_expunge,
        "--to",
        f"maildir:{maildir}",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["restored"] == 3
    files = {p.read_bytes(): p for p in (maildir / "cur").iterdir()}
    assert story.appended in files
    restored = files[story.appended]
    assert restored.name.endswith(":2,R")  # \Answered then; $Important has no Maildir letter
    assert int(restored.stat().st_mtime) == int(
        datetime.fromisoformat(story.appended_date.replace("Z", "+00:00")).timestamp()
    )
    assert any(data.endswith(story.moved) for data in files)  # lmtpd prepends its headers

    target = f"imap://alice:{server.password('alice')}@127.0.0.1:{server.imap_port}/INBOX/Restored"
    done = vaultctl(
        home,
        "restore",
        "--mailbox",
        "user/alice/Project2",
        "--at",
        story.before_expunge,
        "--to",
        target,
        "--uid",
        "1",
    )
    assert done.returncode == 0, done.stderr
    alice = server.imap("alice")
    try:
        assert alice.select("INBOX/Restored", readonly=True)[0] == "OK"
        typ, data = alice.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
        [(head, body)] = [d for d in data if isinstance(d, tuple)]
    finally:
        alice.logout()
    assert body == story.appended
    fetched_flags = re.search(rb"FLAGS \(([^)]*)\)", head)
    internal_date = imaplib.Internaldate2tuple(head)
    assert fetched_flags and internal_date, head
    flags = set(fetched_flags.group(1).decode().split()) - {"\\Recent"}
    assert flags == {"\\Answered", "$Important"}
    when = datetime.fromtimestamp(time.mktime(internal_date), UTC)
    assert format_time(when) == story.appended_date
