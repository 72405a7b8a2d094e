"""The everyday verbs through the CLI, --json output parsed: ``show ITEM``, a whole user's
restore (``--user``), ``mbox:-``, and a restore or export over a corrupt blob (skipped,
reported, exit 3)."""

from __future__ import annotations

import base64
import json
import mailbox
import time
from pathlib import Path

import pytest

from tests.core.helpers import init_vault, sha, write_maildir
from vault.model import format_time, now
from vault.testing.cli import vaultctl, vaultctl_run


def mail(n: int, to: str = "jane", subject: str = "report") -> bytes:
    return (
        f"From: sender{n}@example.org\nTo: {to}@example.org\nSubject: {subject} {n}\n"
        f"Message-ID: <verb{n}@example.org>\nDate: Mon, 2 Feb 2026 10:00:00 +0000\n\nbody {n} quarterly\n"
    ).encode()


def ok(result, code: int = 0):
    assert result.code == code, result
    return json.loads(result.out) if result.out.strip() else None


@pytest.fixture
def jane(tmp_path):
    """jane's INBOX (``user/jane``, as Cyrus names it) with 4 messages and her Sent with 2, john's
    INBOX with 1; then, after time ``t1``, a fifth message in jane's INBOX."""
    home = init_vault(tmp_path / "vault")
    inbox = write_maildir(tmp_path / "inbox", {f"{n}:2,S": mail(n) for n in range(4)})
    sent = write_maildir(tmp_path / "sent", {f"{n}:2,": mail(n, "bob", "sent") for n in range(10, 12)})
    john = write_maildir(tmp_path / "john", {"1:2,": mail(20, "john")})
    for box, folder in ((inbox, "user/jane"), (sent, "user/jane/Sent"), (john, "user/john")):
        ok(vaultctl_run(home, "import", str(box), "--mailbox", folder, "--json"))
    time.sleep(0.01)
    t1 = format_time(now())
    time.sleep(0.01)
    (inbox / "cur" / "4:2,").write_bytes(mail(4))
    ok(vaultctl_run(home, "import", str(inbox), "--mailbox", "user/jane", "--json"))
    return home, t1


def items_of(home: Path, query: str) -> list[str]:
    return ok(vaultctl_run(home, "search", query, "--output", "items", "--json"))["items"]


def test_show_prints_the_message_byte_for_byte_and_audits_the_read(jane, tmp_path):
    home, _ = jane
    (item,) = items_of(home, "subject:sent subject:11")
    shown = vaultctl(home, "show", item, text=False)
    assert shown.returncode == 0 and shown.stdout == mail(11, "bob", "sent")
    as_json = ok(vaultctl_run(home, "show", item, "--json"))
    assert base64.b64decode(as_json["base64"]) == mail(11, "bob", "sent")
    written = ok(vaultctl_run(home, "show", item, "--to", str(tmp_path / "one.eml"), "--json"))
    assert written == {"item": item, "path": str(tmp_path / "one.eml"), "bytes": len(mail(11, "bob", "sent"))}
    assert (tmp_path / "one.eml").read_bytes() == mail(11, "bob", "sent")
    again = vaultctl_run(home, "show", item, "--to", str(tmp_path / "one.eml"), "--json")
    assert again.code == 1 and json.loads(again.err)["exit_code"] == 1  # never overwrites
    reads = [e for e in ok(vaultctl_run(home, "audit", "--json")) if e["kind"] == "mail.read"]
    assert len(reads) == 4 and all(
        e["data"]["items"] == [item] and e["data"]["method"] == "show" for e in reads
    )


def test_show_of_an_unknown_item_is_one_json_error(jane):
    home, _ = jane
    done = vaultctl(home, "show", "nosuchfolder:1:1", "--json")
    assert done.returncode == 1 and done.stdout == ""
    error = json.loads(done.stderr)
    assert error["exit_code"] == 1 and "no item 'nosuchfolder:1:1'" in error["error"]


def test_restore_user_writes_every_folder_under_its_cyrus_name_as_at_t(jane, tmp_path):
    home, t1 = jane
    out = tmp_path / "out"
    report = ok(
        vaultctl_run(home, "restore", "--user", "jane", "--at", t1, "--to", f"maildir:{out}", "--json")
    )
    assert [f["mailbox"] for f in report["folders"]] == ["user/jane", "user/jane/Sent"]
    assert report["restored"] == 6 and report["unreadable"] == []
    inbox, sent = mailbox.Maildir(out / "user" / "jane"), mailbox.Maildir(out / "user" / "jane" / "Sent")
    assert sorted(sha(m.as_bytes()) for m in inbox) == sorted(sha(mail(n)) for n in range(4))  # not 4: later
    assert sorted(sha(m.as_bytes()) for m in sent) == sorted(sha(mail(n, "bob", "sent")) for n in (10, 11))
    assert not (out / "user" / "john").exists()
    now_report = ok(
        vaultctl_run(home, "restore", "--user", "jane", "--to", f"maildir:{tmp_path / 'now'}", "--json")
    )
    assert now_report["restored"] == 7
    restores = [e for e in ok(vaultctl_run(home, "audit", "--json")) if e["kind"] == "restore.done"]
    assert {e["data"]["mailbox"] for e in restores} == {"user/jane", "user/jane/Sent"}


def test_restore_to_mbox_dash_writes_the_mbox_on_stdout_and_the_report_on_stderr(jane, tmp_path):
    home, t1 = jane
    done = vaultctl(home, "restore", "--user", "jane", "--at", t1, "--to", "mbox:-", "--json", text=False)
    assert done.returncode == 0, done.stderr
    (tmp_path / "all.mbox").write_bytes(done.stdout)
    subjects = sorted(m["Subject"] for m in mailbox.mbox(tmp_path / "all.mbox"))
    assert subjects == sorted([f"report {n}" for n in range(4)] + ["sent 10", "sent 11"])
    assert json.loads(done.stderr)["restored"] == 6
    one = vaultctl(home, "restore", "--mailbox", "user/john", "--to", "mbox:-", text=False)
    assert one.returncode == 0 and one.stdout.startswith(b"From ") and b"Subject: report 20" in one.stdout
    assert b"restored 1 messages" in one.stderr


def test_restore_user_needs_exactly_one_of_mailbox_and_user(jane):
    home, _ = jane
    for args in ([], ["--mailbox", "user/jane", "--user", "jane"], ["--user", "jane", "--uid", "1"]):
        done = vaultctl(home, "restore", *args, "--to", "mbox:-", "--json")
        assert done.returncode == 2 and json.loads(done.stderr)["usage"] is True
    nobody = vaultctl(home, "restore", "--user", "nobody", "--to", "mbox:-", "--json")
    assert nobody.returncode == 1 and "nobody had no folders" in json.loads(nobody.stderr)["error"]


def corrupt_one_blob(home: Path) -> None:
    """Flip the middle byte of the store's biggest pack (the first import's: jane's INBOX), which
    lies inside one of its messages' compressed frames."""
    pack = max(
        (p for p in (home / "blobs").rglob("*") if p.is_file() and "packs" in p.parts),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.chmod(0o600)
    pack.write_bytes(bytes(data))


def test_a_restore_over_a_corrupt_blob_skips_it_restores_the_rest_and_exits_3(jane, tmp_path):
    home, _ = jane
    corrupt_one_blob(home)
    out = tmp_path / "out"
    done = vaultctl(home, "restore", "--user", "jane", "--to", f"maildir:{out}", "--json")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    (bad,) = report["unreadable"]
    assert any(w in bad["reason"] for w in ("corrupt", "decompress", "hashes", "authentication failed"))
    restored = [m.as_bytes() for f in ("user/jane", "user/jane/Sent") for m in mailbox.Maildir(out / f)]
    assert report["restored"] == len(restored) == 6  # 7 present, one unreadable
    everything = {sha(mail(n)) for n in range(5)} | {sha(mail(n, "bob", "sent")) for n in (10, 11)}
    assert {sha(m) for m in restored} < everything
    text = vaultctl(home, "restore", "--user", "jane", "--to", f"maildir:{tmp_path / 'again'}")
    assert text.returncode == 3 and f"unreadable: {bad['item']}" in text.stderr
    assert "1 message(s) could not be read" in text.stderr
    # the export of the same mail leaves it out, says so, exits 3, and still verifies
    exported = vaultctl(home, "search", "quarterly", "--export", str(tmp_path / "exp"), "--json")
    assert exported.returncode == 3, exported.stderr
    assert [u["item"] for u in json.loads(exported.stdout)["unreadable"]] == [bad["item"]]
    checked = vaultctl(
        home,
        "verify-export",
        str(tmp_path / "exp"),
        "--key",
        str(home / "keys" / "ledger.ed25519.pub"),
        "--json",
    )
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True, checked.stderr
    verified = vaultctl(home, "verify", "--read-data", "--json")
    assert verified.returncode == 3 and not json.loads(verified.stdout)["ok"]
