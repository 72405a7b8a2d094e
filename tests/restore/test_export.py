"""E-discovery exports: the messages a search found, byte-identical, with a manifest that
``vaultctl verify-export`` checks offline with nothing but the export and the public key;
any changed, missing or extra file is caught."""

from __future__ import annotations

import email
import hashlib
import json
import mailbox
import re
import shutil
import subprocess

import pytest

from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl


def run(home, *args, check=True):
    done = vaultctl(home, *args)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def vault(spamassassin_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("export") / "vault"
    run(home, "init")
    run(home, "import", str(spamassassin_dir / "spam-1"), "--mailbox", "user/bob/Junk")
    run(home, "import", str(spamassassin_dir / "hard-ham-1"), "--mailbox", "user/alice/Archive")
    run(home, "import", str(spamassassin_dir / "hard-ham-1"), "--mailbox", "user/bob/INBOX")
    originals = {
        hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes()
        for d in ("spam-1", "hard-ham-1")
        for p in message_files(spamassassin_dir / d)
    }
    return home, originals


def verify(home, path) -> subprocess.CompletedProcess[str]:
    return vaultctl(None, "verify-export", str(path), "--key", str(home / "keys" / "ledger.ed25519.pub"))


def export(home, tmp_path, query, *extra):
    target = tmp_path / "export"
    report = json.loads(run(home, "search", query, "--export", str(target), "--json", *extra).stdout)
    return target, report


def test_eml_export_is_byte_identical_and_verifies(vault, tmp_path):
    home, originals = vault
    total = json.loads(run(home, "search", "has:attachment", "--json").stdout)["total"]
    target, report = export(home, tmp_path, "has:attachment")
    manifest = json.loads((target / "manifest.json").read_text())
    files = sorted((target / "messages").iterdir())
    assert report["messages"] == len(files) == len(manifest["items"]) == report["items"]
    assert len({i["sha256"] for i in manifest["items"]}) == total  # every hit, per item it is held as
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert originals[digest] == path.read_bytes()
    assert verify(home, target).returncode == 0
    audit = [e for e in json.loads(run(home, "audit", "--json").stdout) if e["kind"] == "export.made"]
    assert audit[-1]["data"]["manifest_sha256"] == report["manifest_sha256"]


def test_dedupe_gives_one_file_per_content(vault, tmp_path):
    home, _ = vault
    query = "custodian:bob size:>0"
    total = json.loads(run(home, "search", query, "--json").stdout)["total"]
    target, report = export(home, tmp_path, query, "--dedupe")
    assert report["messages"] == total == len(list((target / "messages").iterdir()))


def test_mbox_export_opens_as_an_mbox(vault, tmp_path):
    home, originals = vault
    target, report = export(home, tmp_path, "subject:money", "--format", "mbox")
    box = mailbox.mbox(str(target / "messages" / "messages.mbox"))
    assert len(box) == report["items"] > 0
    for key in box.keys():
        # mboxrd: every "From " line of the message was written with one more ">"
        data = re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(key, from_=False))
        original = originals[hashlib.sha256(data).hexdigest()]
        assert original == data
        headers = email.message_from_bytes(data.split(b"\n", 1)[1] if data.startswith(b"From ") else data)
        assert "money" in str(headers["subject"]).lower()
    assert verify(home, target).returncode == 0


@pytest.mark.parametrize(
    "tamper",
    ["change a message", "delete a message", "add a file", "edit the manifest", "swap the checkpoint"],
)
def test_tampered_export_is_rejected(vault, tmp_path, tamper):
    home, _ = vault
    target, _ = export(home, tmp_path, "subject:money")
    first = sorted((target / "messages").iterdir())[0]
    if tamper == "change a message":
        data = bytearray(first.read_bytes())
        data[-3] ^= 0x01
        first.write_bytes(bytes(data))
    elif tamper == "delete a message":
        first.unlink()
    elif tamper == "add a file":
        shutil.copy(first, target / "messages" / "extra.eml")
    elif tamper == "edit the manifest":
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["items"][0]["custodians"] = ["mallory"]
        (target / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    else:
        text = (target / "checkpoint.txt").read_text()
        (target / "checkpoint.txt").write_text(text.replace("\n", "\n\n", 1))
    done = verify(home, target)
    assert done.returncode != 0 and "FAILED" in done.stderr


def test_export_into_a_non_empty_directory_is_refused(vault, tmp_path):
    home, _ = vault
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "keep.txt").write_text("mine")
    done = run(home, "search", "subject:money", "--export", str(tmp_path / "export"), check=False)
    assert done.returncode != 0 and "not empty" in done.stderr
    assert (tmp_path / "export" / "keep.txt").read_text() == "mine"


def _rehash(target) -> None:
    """Recompute manifest.sha256 the way an export writes it: what a careful forger does."""
    lines = [
        f"{hashlib.sha256((target / n).read_bytes()).hexdigest()}  {n}"
        for n in ("manifest.json", "manifest.csv")
    ]
    (target / "manifest.sha256").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("change", ["remove items", "add an item"])
def test_an_export_that_lost_or_gained_items_fails_even_rehashed(vault, tmp_path, change):
    home, _ = vault
    target, report = export(home, tmp_path, "subject:money")
    assert verify(home, target).returncode == 0
    assert json.loads((target / "completeness.json").read_text())["entry"]  # the signed entry travels
    manifest = json.loads((target / "manifest.json").read_text())
    if change == "remove items":
        gone, manifest["items"] = manifest["items"][:3], manifest["items"][3:]
        for rec in gone:
            (target / rec["file"]).unlink()
    else:
        manifest["items"].append(dict(manifest["items"][0], item=manifest["items"][0]["item"] + "-copy"))
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    _rehash(target)
    done = verify(home, target)
    assert done.returncode != 0
    assert "not the one the signed export.made entry recorded" in done.stderr, done.stderr


def test_an_export_without_its_proof_of_completeness_fails(vault, tmp_path):
    home, _ = vault
    target, _ = export(home, tmp_path, "subject:money")
    (target / "completeness.json").unlink()
    done = verify(home, target)
    assert done.returncode != 0 and "nothing proves that the export is complete" in done.stderr


@pytest.mark.parametrize("fmt", ["eml", "mbox"])
def test_messages_without_a_final_newline_verify(tmp_path, fmt):
    home = tmp_path / "vault"
    run(home, "init")
    box = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    bodies = {
        "1.a:2,S": b"From: a@example.org\nSubject: no newline at all\n\nthe last line ends here",
        "2.b:2,S": b"From: b@example.org\nSubject: no newline, CRLF\r\n\r\nends without CRLF",
        "3.c:2,S": b"From: c@example.org\nSubject: no newline\n\nFrom the start\n>From quoted\nlast",
    }
    for name, data in bodies.items():
        (box / "cur" / name).write_bytes(data)
    run(home, "import", str(box), "--mailbox", "user/dana/INBOX")
    target = tmp_path / "export"
    run(home, "search", "subject:newline", "--export", str(target), "--format", fmt)
    done = verify(home, target)
    assert done.returncode == 0, done.stderr
