"""Import of a real Cyrus 3.6 mailbox directory: UIDVALIDITY, UIDs, flags and internal dates
are the server's own (what it answers over IMAP), read from cyrus.index; without a readable
index the import falls back to the files alone and says so."""

from __future__ import annotations

import imaplib
import json
import re
import shutil
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.core.helpers import init_vault
from vault.model import format_time
from vault.testing.cli import vaultctl_run

pytestmark = pytest.mark.cyrus

FLAG_PLAN = {  # delivery n (1-based) -> flags set over IMAP afterwards
    1: r"(\Seen)",
    2: r"(\Flagged $Work)",
    3: r"(\Answered Custom2)",
    5: r"(\Draft \Seen)",
    6: r"(\Deleted)",  # deleted, not expunged: still in the mailbox
}
EXPUNGED = 4


def message(subject: str) -> bytes:
    return (
        f"From: Dave <dave@example.org>\r\nTo: someone@vault.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


def server_view(server, user: str, folder: str = "INBOX") -> dict[int, dict]:
    """UID -> flags, internal date and bytes, as the server answers its owner over IMAP."""
    client = server.imap(user)
    try:
        assert client.select(f'"{folder}"', readonly=True)[0] == "OK"
        typ, data = client.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK"
    finally:
        client.logout()
    out = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        head = part[0].decode()
        uid = re.search(r"UID (\d+)", head)
        flags = re.search(r"FLAGS \(([^)]*)\)", head)
        internal_date = imaplib.Internaldate2tuple(part[0])
        assert uid and flags and internal_date, head
        when = datetime.fromtimestamp(time.mktime(internal_date), UTC)
        out[int(uid.group(1))] = {
            "flags": sorted(f for f in flags.group(1).split() if f != "\\Recent"),
            "internal_date": format_time(when),
            "data": part[1],
        }
    return out


def uidvalidity(server, user: str) -> int:
    client = server.imap(user)
    try:
        typ, data = client.status("INBOX", "(UIDVALIDITY)")
        assert typ == "OK"
    finally:
        client.logout()
    found = re.search(rb"UIDVALIDITY (\d+)", data[0])
    assert found, data
    return int(found.group(1))


@pytest.fixture
def mailbox(cyrus_server):
    """A fresh user whose INBOX got six LMTP deliveries, then flags over IMAP and one expunge."""
    user = f"imp{uuid.uuid4().hex[:8]}"
    cyrus_server.add_user(user)
    for n in range(1, 7):
        cyrus_server.lmtp_deliver(f"{user}@vault.test", message(f"m{n}"))
    client = cyrus_server.imap(user)
    try:
        assert client.select("INBOX")[0] == "OK"
        for uid, flags in FLAG_PLAN.items():
            assert client.uid("STORE", str(uid), "+FLAGS", flags)[0] == "OK"
        assert client.uid("STORE", str(EXPUNGED), "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert client.uid("EXPUNGE", str(EXPUNGED))[0] == "OK"
    finally:
        client.logout()
    spool = cyrus_server.mailbox_path(f"user/{user}")
    assert (spool / f"{EXPUNGED}.").exists(), "delayed expunge keeps the file: the import must skip it"
    return user, spool


def appended_entries(home, folder: str) -> dict[int, dict]:
    entries = json.loads(vaultctl_run(home, "log", "--mailbox", folder, "--json").out)
    return {int(e["item"].rsplit(":", 1)[1]): e["data"] for e in entries if e["kind"] == "message.appended"}


def test_import_keeps_the_servers_uidvalidity_uids_flags_and_dates(
    cyrus_server, mailbox, tmp_path, monkeypatch
):
    user, spool = mailbox
    view = server_view(cyrus_server, user)
    assert sorted(view) == [1, 2, 3, 5, 6]
    home = init_vault(tmp_path / "vault")
    folder = f"user/{user}"
    r = vaultctl_run(home, "import", str(spool), "--mailbox", folder, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert (report["appended"], report["problems"]) == (5, [])

    folders = json.loads(vaultctl_run(home, "ls", "--json").out)
    uniqueid = next(m["uniqueid"] for m in cyrus_server.mailbox_list() if m["name"] == f"user.{user}")
    assert [(f["name"], f["mailbox_id"], f["uidvalidity"]) for f in folders] == [
        (folder, uniqueid, uidvalidity(cyrus_server, user))
    ]
    archived = appended_entries(home, folder)
    assert {uid: (sorted(d["flags"]), d["internal_date"]) for uid, d in archived.items()} == {
        uid: (v["flags"], v["internal_date"]) for uid, v in view.items()
    }

    # restored into the same server, the copies carry the same flags, dates and bytes
    monkeypatch.setenv("VAULT_IMAP_PASSWORD", cyrus_server.password(user))
    target = f"imap://{user}@127.0.0.1:{cyrus_server.imap_port}/INBOX/Restored"
    r = vaultctl_run(home, "restore", "--mailbox", folder, "--to", target, "--json")
    assert r.code == 0, r
    restored = server_view(cyrus_server, user, "INBOX/Restored")
    assert sorted((v["data"], v["flags"], v["internal_date"]) for v in restored.values()) == sorted(
        (v["data"], v["flags"], v["internal_date"]) for v in view.values()
    )

    # flags changed and a message expunged on the server: the next run records exactly that
    client = cyrus_server.imap(user)
    try:
        client.select("INBOX")
        client.uid("STORE", "2", "-FLAGS", "($Work)")
        client.uid("STORE", "5", "+FLAGS", r"(\Flagged)")
        client.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
        client.uid("EXPUNGE", "1")
    finally:
        client.logout()
    r = json.loads(vaultctl_run(home, "import", str(spool), "--mailbox", folder, "--json").out)
    assert (r["appended"], r["expunged"], r["flag_changes"], r["problems"]) == (0, 1, 2, [])
    entries = json.loads(vaultctl_run(home, "log", "--mailbox", folder, "--json").out)
    changes = sorted(
        (e["kind"], int(e["item"].rsplit(":", 1)[1]), e["data"].get("flags"))
        for e in entries
        if e["kind"] in ("flags.set", "flags.cleared", "message.expunged")
    )
    assert changes == [
        ("flags.cleared", 2, ["$Work"]),
        ("flags.set", 5, ["\\Flagged"]),
        ("message.expunged", 1, None),
    ]


@pytest.mark.parametrize("damage", ["missing", "torn"])
def test_without_a_readable_index_the_files_alone_are_imported_and_the_problem_named(
    cyrus_server, mailbox, tmp_path, damage
):
    user, spool = mailbox
    copy = tmp_path / "copy"
    shutil.copytree(spool, copy)
    index = copy / "cyrus.index"
    if damage == "missing":
        index.unlink()
    else:
        raw = bytearray(index.read_bytes())
        raw[160 + 5] ^= 0xFF  # inside the first record: its CRC no longer matches
        index.write_bytes(bytes(raw))
    home = init_vault(tmp_path / "vault")
    r = vaultctl_run(home, "import", str(copy), "--mailbox", f"user/{user}/INBOX", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert [p["path"] for p in report["problems"]] == [str(index)]
    assert ("missing" if damage == "missing" else "CRC") in report["problems"][0]["reason"]
    # today's behaviour: every message file, the expunged one too, without flags
    files = sorted(int(p.name[:-1]) for p in copy.iterdir() if re.fullmatch(r"\d+\.", p.name))
    archived = appended_entries(home, f"user/{user}/INBOX")
    assert sorted(archived) == files and EXPUNGED in files
    assert all(d["flags"] == [] for d in archived.values())
    folder = json.loads(vaultctl_run(home, "ls", "--json").out)[0]
    uniqueid = next(m["uniqueid"] for m in cyrus_server.mailbox_list() if m["name"] == f"user.{user}")
    assert folder["mailbox_id"] == uniqueid  # cyrus.header still names the mailbox
