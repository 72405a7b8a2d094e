"""The collector against a real Cyrus 3.6: its answers equal what the server itself says over
IMAP (the user's own session), for bytes, flags, internal dates, sizes, modseqs, ACLs and
metadata, across renames and deletes."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest

from vault.ingest.collector.client import (
    CollectorClient,
    CollectorError,
    CollectorRefused,
    MailboxUnknown,
    SpoolFileGone,
)
from vault.model import format_time
from vault.testing.cli import vaultctl, vaultctl_argv
from vault.testing.net import free_port

pytestmark = pytest.mark.cyrus
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


def message(subject: str) -> bytes:
    return (
        f"From: Dave <dave@example.org>\r\nTo: alice@vault.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


def uniqueid(server, name: str) -> str:
    internal = name.replace("/", ".")
    return next(m["uniqueid"] for m in server.mailbox_list() if m["name"] == internal)


def imap_view(client: imaplib.IMAP4, folder: str) -> dict[int, dict]:
    """UID -> what the server says, in the owner's own (read-only) session."""
    assert client.select(f'"{folder}"', readonly=True)[0] == "OK"
    typ, data = client.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)")
    out = {}
    for line in data:
        if not line:
            continue
        text = line.decode()
        uid = re.search(r"UID (\d+)", text)
        flags = re.search(r"FLAGS \(([^)]*)\)", text)
        size = re.search(r"RFC822.SIZE (\d+)", text)
        modseq = re.search(r"MODSEQ \((\d+)\)", text)
        when = imaplib.Internaldate2tuple(line)
        assert uid and flags and size and modseq and when, text
        out[int(uid.group(1))] = {
            "flags": sorted(f for f in flags.group(1).split() if f != "\\Recent"),
            "internal_date": format_time(datetime.fromtimestamp(time.mktime(when), UTC)),
            "size": int(size.group(1)),
            "modseq": int(modseq.group(1)),
        }
    return out


def test_fetch_and_enumerate_equal_the_servers_view(cyrus_server, collector):
    folder = f"INBOX/C{uuid.uuid4().hex[:8]}"
    alice = cyrus_server.imap("alice")
    try:
        assert alice.create(f'"{folder}"')[0] == "OK"
        bodies = [message(f"m{i}") for i in range(5)]
        dates = [imaplib.Time2Internaldate(time.time() - 86400 * (10 + i)) for i in range(5)]
        flag_sets = [None, r"(\Seen)", r"(\Flagged $Work)", r"(\Answered \Draft Custom2)", None]
        for body, date, flags in zip(bodies, dates, flag_sets):
            assert alice.append(f'"{folder}"', flags, date, body)[0] == "OK"
        alice.select(f'"{folder}"')
        alice.uid("STORE", "5", "+FLAGS", r"(\Deleted)")
        alice.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
        alice.expunge()  # UIDs 1 and 5 gone; their files stay on disk for a while
        alice.uid("STORE", "2", "+FLAGS", r"(\Deleted)")  # deleted, not expunged
        alice.unselect()  # CLOSE would expunge it
        view = imap_view(alice, folder)
        mailbox_id = uniqueid(cyrus_server, f"user/alice/{folder[6:]}")

        state = collector.mailbox_state(mailbox_id)
        assert state["mailbox_id"] == mailbox_id and state["name"] == f"user/alice/{folder[6:]}"
        got = {
            m["uid"]: {
                k: (sorted(m[k]) if k == "flags" else m[k])
                for k in ("flags", "internal_date", "size", "modseq")
            }
            for m in state["messages"]
        }
        assert got == view and sorted(view) == [2, 3, 4]
        assert collector.enumerate(f"user/alice/{folder[6:]}") == state["messages"]  # by name

        for uid in (2, 3, 4):
            fetched = collector.fetch_message(mailbox_id, uid)
            typ, data = alice.uid("FETCH", str(uid), "(BODY.PEEK[])")
            assert fetched.data == data[0][1] == bodies[uid - 1]
            assert fetched.internal_date == view[uid]["internal_date"]
        assert collector.fetch(mailbox_id, 3) == bodies[2]
    finally:
        alice.logout()


def test_folder_acl_metadata_rename_delete(cyrus_server, collector):
    name = f"F{uuid.uuid4().hex[:8]}"
    alice = cyrus_server.imap("alice")
    admin = cyrus_server.imap(cyrus_server.admin)
    try:
        assert alice.create(f"INBOX/{name}")[0] == "OK"
        assert alice.setacl(f"INBOX/{name}", "bob", "lrs")[0] == "OK"
        assert (
            alice._simple_command("SETMETADATA", f"INBOX/{name}", '(/shared/comment "a comment")')[0] == "OK"
        )
        mailbox_id = uniqueid(cyrus_server, f"user/alice/{name}")
        by_name = collector.folder(f"user/alice/{name}")
        by_id = collector.folder(mailbox_id)
        assert by_name == by_id
        typ, acl = admin.getacl(f'"user/alice/{name}"')
        words = acl[0].decode().split()[1:]
        assert by_id["acl"] == dict(zip(words[::2], words[1::2])) == {"alice": "lrswipkxtecdan", "bob": "lrs"}
        assert by_id["metadata"]["/shared/comment"] == "a comment"
        status = alice.status(f"INBOX/{name}", "(UIDVALIDITY)")[1][0]
        uidvalidity = re.search(rb"UIDVALIDITY (\d+)", status)
        assert uidvalidity, status
        assert by_id["uidvalidity"] == int(uidvalidity.group(1))
        assert not by_id["deleted"]

        assert alice.rename(f"INBOX/{name}", f"INBOX/{name}-2")[0] == "OK"
        assert collector.folder(mailbox_id)["name"] == f"user/alice/{name}-2"
        assert alice.delete(f"INBOX/{name}-2")[0] == "OK"
        gone = collector.folder(mailbox_id)
        assert gone["deleted"] and gone["metadata"] == {}
        with pytest.raises(MailboxUnknown):
            collector.folder(f"user/alice/{name}-2")
    finally:
        alice.logout()
        admin.logout()


def test_refusals(cyrus_server, collector):
    inbox = uniqueid(cyrus_server, "user/alice")
    with pytest.raises(SpoolFileGone, match="spool file gone"):
        collector.fetch(inbox, 4_000_000_000)
    with pytest.raises(MailboxUnknown):
        collector.fetch("zzzzzzzzzzzzzzzzzzzzzzzz", 1)
    with pytest.raises(MailboxUnknown):
        collector.folder("user/nobody/Nothing")
    with pytest.raises(CollectorRefused, match="BAD"):
        collector._request([b"FETCH", inbox.encode(), b"-1"])
    with pytest.raises(CollectorRefused, match="unknown request"):
        collector._request([b"DELETE", b"everything"])
    assert collector.folder(inbox)["name"] == "user/alice"  # still answering


def test_unreachable_collector_is_a_retryable_error():
    client = CollectorClient("tcp://127.0.0.1:9", timeout=0.3)
    with pytest.raises(CollectorError, match="no answer"):
        client.folder("user/alice")
    with pytest.raises(CollectorError):  # a fresh socket after the timeout, not a stuck REQ
        client.folder("user/alice")
    client.close()


def test_vaultctl_collector_serves_and_stops(cyrus_server, tmp_path):
    port = free_port()
    env = {**os.environ, "VAULT_COLLECTOR_PASSWORD": cyrus_server.admin_password}
    # no config.toml, but keys: the collector's, and a worker's it lets in
    home = tmp_path / "none"
    assert vaultctl(home, "keys", "init", "collector", timeout=60).returncode == 0
    worker = vaultctl(home, "keys", "init", "worker", timeout=60)
    assert worker.returncode == 0, worker.stderr
    trusted = vaultctl(home, "keys", "trust", "collector", "vault", worker.stdout.strip(), timeout=60)
    assert trusted.returncode == 0, trusted.stderr
    proc = subprocess.Popen(
        vaultctl_argv(
            "collector",
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--imapd-conf",
            str(cyrus_server.config_path),
            "--imap-port",
            str(cyrus_server.imap_port),
            home=tmp_path / "none",
        ),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    said = ""
    try:
        # asked once it listens: a client retrying a port not bound yet could meet anything there
        for line in proc.stderr:
            said += line
            if "collector listening on" in line:
                break
        assert "collector listening on" in said, said
        ask = vaultctl(
            tmp_path / "none",
            "collector",
            "ask",
            "folder",
            "user/alice",
            "--address",
            f"tcp://127.0.0.1:{port}",
            timeout=60,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        said += proc.stderr.read()
    assert ask.returncode == 0, f"{ask.stderr}\ncollector:\n{said}"
    assert '"name": "user/alice"' in ask.stdout
    assert uniqueid(cyrus_server, "user/alice") in ask.stdout
    assert code == 0, said


def test_vaultctl_collector_refuses_a_bad_imapd_conf(tmp_path):
    done = vaultctl(tmp_path, "collector", "--imapd-conf", str(tmp_path / "nope.conf"), timeout=60)
    assert done.returncode != 0 and "nope.conf" in done.stderr
