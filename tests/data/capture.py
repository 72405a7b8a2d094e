"""Re-capture the Cyrus ground truth in tests/data/cyrus/ from a private Cyrus (and Postfix).

    python -m tests.data.capture events  OUT.jsonl   # what notifyd hands an external notifier
    python -m tests.data.capture dlist   OUT.txt     # stream (dlist) mode NOTIFY frames
    python -m tests.data.capture maillog OUT.txt     # Postfix relaying to Cyrus over LMTP

Run as root on a machine with Debian's cyrus-imapd and postfix (scripts/setup.sh test). Each
command starts its own servers with the harness the tests use (vault/testing/cyrus_server.py,
vault/testing/postfix_server.py) on free loopback ports, performs the steps listed in STEPS
(the same steps, in the same order, that produced the committed files), writes OUT and removes
the servers. Servername ``feas.local`` and users alice and bob, as in the committed captures,
so the output can replace them; ids, timestamps, UIDVALIDITYs, pids and queue ids differ from
run to run (tests/data/README.md says what else differs).
"""

from __future__ import annotations

import argparse
import imaplib
import re
import socket
import sys
import threading
import time
from pathlib import Path

from vault.testing.cyrus_server import CyrusServer, new_base_dir
from vault.testing.postfix_server import PostfixServer
from vault.testing.postfix_server import new_base_dir as new_postfix_dir

SERVERNAME = "feas.local"
USERS = ("alice", "bob")
imaplib.Commands.setdefault("MOVE", ("SELECTED",))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))

# What the events capture does, in order (the harness's start() already logged in as the admin
# and created user/alice and user/bob, one admin connection each).
STEPS = """\
admin SETQUOTA user/alice (STORAGE 100000)
alice LOGIN; CREATE INBOX/Archive; SUBSCRIBE INBOX/Archive; APPEND INBOX
LMTP deliver to alice
alice SELECT INBOX; FETCH 2 BODY[]; STORE 1 +FLAGS (\\Flagged $Custom); STORE 1 -FLAGS (\\Flagged)
alice COPY 1 INBOX/Archive; MOVE 2 INBOX/Archive; STORE 1 +FLAGS \\Deleted; EXPUNGE
alice RENAME INBOX/Archive INBOX/Archive2; UNSUBSCRIBE INBOX/Archive; CREATE INBOX/Tmp; DELETE INBOX/Tmp
alice SETMETADATA INBOX/Archive2 (/shared/comment "capture"); LOGOUT
admin SETACL user/alice/Archive2 bob lrs; DELETEACL user/alice/Archive2 bob; LOGOUT
LMTP deliver to alice; alice STORE 1 +FLAGS (\\Seen \\Answered); LOGOUT
"""


def message(n: int, subject: str) -> bytes:
    """A small message with a Message-ID unique to this run (Cyrus drops repeated ones)."""
    return (
        f"From: Dave <dave@example.org>\r\nTo: alice@{SERVERNAME}\r\nSubject: {subject}\r\n"
        f"Date: Sun, 22 Nov 2026 12:0{n % 10}:00 +0000\r\n"
        f"Message-ID: <capture-{n}-{time.time_ns()}@example.org>\r\n\r\n{subject}, body line\r\n"
    ).encode()


def _ok(reply) -> list:
    typ, data = reply
    if typ != "OK":
        raise RuntimeError(f"IMAP answered {typ}: {data}")
    return data


def _imap_steps(server: CyrusServer) -> None:
    admin = server.imap(server.admin)
    _ok(admin.setquota('"user/alice"', "(STORAGE 100000)"))
    alice = server.imap("alice")
    _ok(alice.create('"INBOX/Archive"'))
    _ok(alice.subscribe('"INBOX/Archive"'))
    _ok(alice.append("INBOX", None, None, message(0, "appended")))
    server.lmtp_deliver("alice", message(1, "delivered"))
    _ok(alice.select("INBOX"))
    _ok(alice.fetch("2", "(BODY[])"))
    _ok(alice.store("1", "+FLAGS", "(\\Flagged $Custom)"))
    _ok(alice.store("1", "-FLAGS", "(\\Flagged)"))
    _ok(alice.copy("1", '"INBOX/Archive"'))
    _ok(alice._simple_command("MOVE", "2", '"INBOX/Archive"'))
    _ok(alice.store("1", "+FLAGS", "\\Deleted"))
    _ok(alice.expunge())
    _ok(alice.rename('"INBOX/Archive"', '"INBOX/Archive2"'))
    _ok(alice.unsubscribe('"INBOX/Archive"'))
    _ok(alice.create('"INBOX/Tmp"'))
    _ok(alice.delete('"INBOX/Tmp"'))
    _ok(alice._simple_command("SETMETADATA", '"INBOX/Archive2"', '(/shared/comment "capture")'))
    alice.logout()
    _ok(admin.setacl('"user/alice/Archive2"', "bob", "lrs"))
    _ok(admin.deleteacl('"user/alice/Archive2"', "bob"))
    admin.logout()
    server.lmtp_deliver("alice", message(2, "read and answered"))
    alice = server.imap("alice")
    _ok(alice.select("INBOX"))
    uids = _ok(alice.search(None, "ALL"))[0].split()
    _ok(alice.store(uids[-1].decode(), "+FLAGS", "(\\Seen \\Answered)"))
    alice.logout()


def _settle(count, quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until ``count()`` has not changed for ``quiet`` seconds (notifyd and Cyrus deliver
    events after the client got its reply)."""
    deadline, last, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def capture_events(out: Path) -> int:
    """External notifier mode with the harness's /bin/sh hook: its file is exactly the JSON plus
    newline notifyd handed over on stdin, one event a line."""
    server = CyrusServer(new_base_dir("capture"), mode="external", users=USERS, servername=SERVERNAME)
    try:
        server.start()
        _imap_steps(server)
        _settle(lambda: len(server.hook_events()))
        out.write_bytes(server.hook_events_path.read_bytes())
        return len(server.hook_events())
    finally:
        server.cleanup(remove=True)


class _DlistListener(threading.Thread):
    """Binds the stream-mode notify socket and records every NOTIFY frame byte for byte,
    answering each ``OK NIL`` (what Cyrus accepts)."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        path.chmod(0o777)  # Cyrus connects as user cyrus
        self.sock.listen(16)
        self.frames: list[bytes] = []

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                frame = _read_frame(conn)
                if frame:
                    self.frames.append(frame)
                    conn.sendall(b"OK NIL\r\n")


def _read_frame(conn: socket.socket) -> bytes:
    buf = b""
    while True:
        m = re.search(rb"\{(\d+)\+?\}\r\n", buf)
        if m and len(buf) >= m.end() + int(m.group(1)) and buf.endswith(b")\r\n"):
            return buf
        chunk = conn.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def capture_dlist(out: Path) -> int:
    """Stream mode: two LMTP deliveries and the IMAP steps, written as dlist-samples.txt is:
    each frame's length and its Python repr, long frames abridged in the middle."""
    server = CyrusServer(new_base_dir("capture"), mode="stream", users=USERS, servername=SERVERNAME)
    assert server.notify_target is not None  # stream mode: the dlist socket's path
    listener = _DlistListener(server.notify_target)
    listener.start()
    try:
        server.start()
        _imap_steps(server)
        _settle(lambda: len(listener.frames))
    finally:
        server.cleanup(remove=True)
        listener.sock.close()
    lines = [
        "# Python-repr (escaped) of exact bytes Cyrus 3.6.1 lmtpd/imapd wrote to its dlist: notify socket.",
        '# Reply that Cyrus accepts silently: b"OK NIL\\r\\n" (any "OK <value>\\r\\n"). Frames >4000 bytes'
        " truncated in the middle here.",
        "",
    ]
    for frame in listener.frames:
        text = repr(frame)
        if len(frame) > 4000:
            text = f"{repr(frame[:1500])}\n... [{len(frame) - 3000} bytes omitted] ...\n{repr(frame[-1500:])}"
        lines += [f"## {len(frame)} bytes", text, ""]
    out.write_text("\n".join(lines))
    return len(listener.frames)


def capture_maillog(out: Path) -> int:
    """Postfix relaying to Cyrus LMTP: one message to a known and an unknown user (one
    delivered, one bounced, the bounce to an outside sender bounced in turn)."""
    cyrus = CyrusServer(new_base_dir("capture"), mode="none", users=USERS, servername=SERVERNAME)
    postfix = None
    try:
        cyrus.start()
        postfix = PostfixServer(
            new_postfix_dir("capture"),
            lmtp_port=cyrus.lmtp_port,
            domain=SERVERNAME,
            myhostname=f"mx.{SERVERNAME}",
        )
        postfix.start()
        msg = (
            f"From: erin@example.org\r\nTo: alice@{SERVERNAME}, nosuchuser@{SERVERNAME}\r\n"
            "Subject: pf test\r\nMessage-ID: <pf-1@example.org>\r\n\r\nhello from postfix\r\n"
        ).encode()
        postfix.send("erin@example.org", [f"alice@{SERVERNAME}", f"nosuchuser@{SERVERNAME}"], msg)
        postfix.wait_log(lambda lines: sum(": removed" in line for line in lines) >= 2)
        lines = postfix.log_lines()
        out.write_text("".join(line + "\n" for line in lines))
        return len(lines)
    finally:
        if postfix is not None:
            postfix.cleanup(remove=True)
        cyrus.cleanup(remove=True)


CAPTURES = {"events": capture_events, "dlist": capture_dlist, "maillog": capture_maillog}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=sorted(CAPTURES))
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    n = CAPTURES[args.what](args.out)
    print(f"capture {args.what}: {n} {'lines' if args.what == 'maillog' else 'events'} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
