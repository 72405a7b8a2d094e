"""The real-Cyrus harness, and the ground truth it shows the dealer's authors.

What Cyrus 3.6 sends in each notifier mode, checked against a real server: the external hook's
argv and JSON events, the notifysocket datagram layout, and the dlist NOTIFY frame on a stream
socket with its ``OK NIL`` reply. See tests/data/README.md.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid

import pytest

pytestmark = pytest.mark.cyrus

SESSION_ID = re.compile(r"SESSIONID=<([^>]+)>")


def message(subject: str) -> tuple[bytes, str]:
    """A small message with a Message-ID never used before (Cyrus drops repeats silently)."""
    msgid = f"<{uuid.uuid4().hex}@example.org>"
    text = (
        f"From: Dave <dave@example.org>\r\nTo: alice@vault.test\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid}\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\n"
        f"Body of {subject}.\r\n"
    )
    return text.encode(), msgid


def session_id(lmtp_reply: str) -> str:
    found = SESSION_ID.search(lmtp_reply)
    assert found, f"no SESSIONID in LMTP reply {lmtp_reply!r}"
    return found.group(1)


def uniqueid(server, name: str) -> str:
    return next(m["uniqueid"] for m in server.mailbox_list() if m["name"] == name)


def test_external_hook_sees_every_kind_of_change(cyrus_server):
    server = cyrus_server
    folder = f"F{uuid.uuid4().hex[:8]}"
    server.create_mailbox(f"user/alice/{folder}")
    inbox_id = uniqueid(server, "user.alice")
    folder_id = uniqueid(server, f"user.alice.{folder}")

    delivered, delivered_msgid = message("delivered")
    sid = session_id(server.lmtp_deliver("alice@vault.test", delivered))
    appended, _ = message("appended")
    client = server.imap("alice")
    try:
        assert client.append(f"INBOX/{folder}", None, None, appended)[0] == "OK"
        client.select(f"INBOX/{folder}")
        assert client.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
        client.store("1", "+FLAGS", r"(\Deleted)")
        assert client.expunge()[0] == "OK"
        client.close()
        assert client.rename(f"INBOX/{folder}", f"INBOX/{folder}-renamed")[0] == "OK"
    finally:
        client.logout()

    def mine(events, kind, mailbox_id):
        return [e for e in events if e["event"] == kind and e.get("mailboxID") == mailbox_id]

    wanted = [
        ("MessageNew", inbox_id),
        ("MessageAppend", folder_id),
        ("FlagsSet", folder_id),
        ("MessageExpunge", folder_id),
        ("MailboxRename", folder_id),
    ]
    events = server.wait_hook_events(lambda ev: all(mine(ev, k, m) for k, m in wanted))

    new = [e for e in mine(events, "MessageNew", inbox_id) if e["vnd.cmu.sessionId"] == sid]
    assert len(new) == 1 and new[0]["vnd.cmu.midset"] == [delivered_msgid]
    assert "\\Flagged" in mine(events, "FlagsSet", folder_id)[0]["flagNames"]
    # the extra parameters vault asks for (cyrus_config.EVENT_EXTRA_PARAMS: what the handlers
    # read), and none of those it no longer asks for
    assert {"timestamp", "service", "vnd.cmu.emailid", "vnd.cmu.sessionId", "vnd.cmu.mailboxACL"} <= new[
        0
    ].keys()
    unread = {"bodyStructure", "vnd.cmu.envelope", "messageSize", "messages", "modseq", "uidnext"}
    unread |= {"vnd.cmu.unseenMessages", "vnd.cmu.threadid"}
    assert not unread & {key for e in events for key in e}
    assert all("clientIP" in e for e in events if e["event"] == "Login")
    # the id survives the rename; the new name is in the URI
    assert uniqueid(server, f"user.alice.{folder}-renamed") == folder_id
    assert f"/user/alice/{folder}-renamed" in mine(events, "MailboxRename", folder_id)[0]["uri"]

    assert set(map(tuple, server.hook_argvs())) == {("-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f")}

    uid_in_uri = re.search(r";UID=(\d+)$", new[0]["uri"])
    assert uid_in_uri, new[0]["uri"]
    uid = uid_in_uri.group(1)
    stored = (server.mailbox_path("user/alice") / f"{uid}.").read_bytes()
    assert stored.endswith(delivered) and f"X-Cyrus-Session-Id: {sid}".encode() in stored
    assert any(f"Delivered: {delivered_msgid}" in line for line in server.log_lines())


def test_socket_mode_sends_one_datagram_per_event(cyrus_factory):
    server = cyrus_factory(mode="socket", start=False)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        listener.bind(str(server.notify_target))
        server.notify_target.chmod(0o666)  # imapd/lmtpd run as user cyrus
        listener.settimeout(10)
        server.start()
        sid = session_id(server.lmtp_deliver("alice", message("by datagram")[0]))

        while True:
            datagram = listener.recv(1 << 20)
            fields = datagram.split(b"\0")
            # method, class, priority, user, mailbox, nopt, (no options), JSON, "" after the last NUL
            assert fields[:6] == [b"external", b"EVENT", b"", b"", b"", b"0"] and fields[-1] == b""
            assert len(fields) == 8
            event = json.loads(fields[6])
            if event["event"] == "MessageNew":
                break
    assert event["vnd.cmu.sessionId"] == sid
    assert event["mailboxID"] == uniqueid(server, "user.alice")


def _serve_dlist(listener: socket.socket, frames: list[bytes]):
    """Answer each connection's NOTIFY frame with OK NIL, as the dealer will."""
    header = re.compile(rb"\{(\d+)\+\}\r\n")
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            data = b""
            while not (
                (m := header.search(data))
                and data.endswith(b")\r\n")
                and len(data) >= m.end() + int(m.group(1))
            ):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            frames.append(data)
            conn.sendall(b"OK NIL\r\n")


def test_stream_mode_sends_dlist_frames_and_waits_for_ok(cyrus_factory):
    server = cyrus_factory(mode="stream", start=False)
    frames: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(server.notify_target))
        server.notify_target.chmod(0o666)
        listener.listen(16)
        worker = threading.Thread(target=_serve_dlist, args=(listener, frames), daemon=True)
        worker.start()
        server.start()
        sid = session_id(server.lmtp_deliver("alice", message("by stream")[0]))
        # lmtpd sends the event and waits for our reply before it answers 250
        seen_before_250 = list(frames)
        listener.shutdown(socket.SHUT_RDWR)
    worker.join(10)

    frame = re.compile(
        rb"NOTIFY %\(METHOD external CLASS EVENT PRIORITY NIL USER NIL MAILBOX NIL "
        rb"OPTIONS \(\) MESSAGE \{(\d+)\+\}\r\n(.*) FILEPATH NIL\)\r\n",
        re.S,
    )
    events = []
    for data in frames:
        m = frame.fullmatch(data)
        assert m, f"unexpected frame {data[:200]!r}"
        assert int(m.group(1)) == len(m.group(2))
        events.append(json.loads(m.group(2)))
    new = [e for e in events[: len(seen_before_250)] if e["event"] == "MessageNew"]
    assert [e["vnd.cmu.sessionId"] for e in new] == [sid]


def test_none_mode_delivers_and_keeps_mail_and_users_across_restart(cyrus_factory):
    server = cyrus_factory(mode="none")
    server.add_user("carol")
    body, msgid = message("no events")
    server.lmtp_deliver("carol@vault.test", body)
    server.stop()
    server.start()
    client = server.imap("carol")
    try:
        client.select("INBOX", readonly=True)
        typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    finally:
        client.logout()
    assert typ == "OK" and msgid.encode() in data[0][1]
