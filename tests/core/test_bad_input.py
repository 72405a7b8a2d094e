"""Bad sources get a clear message naming the file; nothing already archived is harmed."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.core.helpers import init_vault, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run


@pytest.fixture
def vault_with_mail(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:20]
    box = make_maildir(tmp_path / "Maildir", files)
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home, {sha(f.read_bytes()) for f in files}


def _intact(home, tmp_path, expected: set[str]) -> None:
    verify = vaultctl_run(home, "verify", "--read-data")
    assert verify.code == 0, verify
    out = tmp_path / f"check-{len(os.listdir(tmp_path))}"
    assert vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}").code == 0
    assert set(read_maildir(out)) == expected


def test_missing_source_names_it(vault_with_mail, tmp_path):
    home, expected = vault_with_mail
    missing = tmp_path / "no-such-Maildir"
    r = vaultctl_run(home, "import", str(missing), "--mailbox", "user/jane/INBOX")
    assert r.code != 0
    assert str(missing) in r.err
    _intact(home, tmp_path, expected)


@pytest.mark.parametrize(
    "content,label",
    [
        (b"", "empty"),
        (bytes(range(256)) * 8, "binary"),
    ],
)
def test_odd_files_in_an_eml_directory_are_reported_and_kept(
    vault_with_mail, tmp_path, content, label, spamassassin_dir
):
    home, expected = vault_with_mail
    emls = tmp_path / "emls"
    emls.mkdir()
    good = message_files(spamassassin_dir / "easy-ham-1")[0]
    shutil.copy(good, emls / "good.eml")
    (emls / f"{label}.eml").write_bytes(content)
    r = vaultctl_run(home, "import", str(emls), "--mailbox", "user/jane/Other", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert any(p["path"].endswith(f"{label}.eml") for p in report["problems"]), report
    assert f"{label}.eml" in r.err  # the operator sees the file named
    assert report["appended"] >= 1
    _intact(home, tmp_path, expected)


def test_truncated_mbox_keeps_what_it_has_and_says_so(vault_with_mail, tmp_path, spamassassin_dir):
    home, expected = vault_with_mail
    files = message_files(spamassassin_dir / "easy-ham-1")[:3]
    mbox = tmp_path / "cut.mbox"
    with mbox.open("wb") as out:
        for f in files:
            out.write(b"From someone@example.org Thu Aug 22 12:36:23 2002\n")
            data = f.read_bytes()
            out.write(
                b"".join(
                    b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln
                    for ln in data.splitlines(keepends=True)
                )
            )
            out.write(b"\n")
    whole = mbox.read_bytes()
    mbox.write_bytes(whole[: len(whole) - 500])  # the last message loses its end
    r = vaultctl_run(home, "import", str(mbox), "--mailbox", "user/jane/Cut", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["appended"] == 3  # nothing lost: the cut message is kept as it is
    assert report["problems"] and str(mbox) in report["problems"][0]["path"]
    _intact(home, tmp_path, expected)


def test_not_an_mbox_is_refused_clearly(vault_with_mail, tmp_path):
    home, expected = vault_with_mail
    bogus = tmp_path / "notes.txt"
    bogus.write_bytes(b"just some notes\nnot mail\n")
    r = vaultctl_run(home, "import", str(bogus), "--mailbox", "user/jane/INBOX")
    assert r.code != 0 and str(bogus) in r.err
    _intact(home, tmp_path, expected)


def test_unreadable_message_is_reported_not_expunged(vault_with_mail, tmp_path, spamassassin_dir):
    """A message file that cannot be read (here: a dangling link, since tests run as root)
    is listed with the reason and the run goes on."""
    home, expected = vault_with_mail
    emls = tmp_path / "emls2"
    emls.mkdir()
    shutil.copy(message_files(spamassassin_dir / "easy-ham-1")[1], emls / "ok.eml")
    os.symlink(tmp_path / "vanished.eml", emls / "dangling.eml")
    r = vaultctl_run(home, "import", str(emls), "--mailbox", "user/jane/Links", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["appended"] == 1
    assert any("dangling.eml" in p["path"] for p in report["problems"])
    _intact(home, tmp_path, expected)


@pytest.mark.s3
def test_dead_store_fails_clearly_and_a_later_run_completes(tmp_path, spamassassin_dir, s3_bucket):
    from vault.testing.net import free_port

    endpoint, bucket = s3_bucket
    dead = f"http://127.0.0.1:{free_port()}"
    home = init_vault(
        tmp_path / "vault",
        **{
            "store.backend": "s3",
            "s3.endpoint_url": dead,
            "s3.bucket": bucket,
            "s3.access_key_id": "t",
            "s3.secret_access_key": "t",
        },
    )
    box = make_maildir(tmp_path / "Maildir", message_files(spamassassin_dir / "easy-ham-1")[:30])
    r = vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    assert r.code != 0
    assert dead.split("//")[1] in r.err and "run the import again" in r.err
    assert json.loads(vaultctl_run(home, "status", "--json").out)["ledger_entries"] == 0
    config = (home / "config.toml").read_text().replace(dead, endpoint.url)
    (home / "config.toml").write_text(config)
    again = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert again["appended"] == 30
    assert vaultctl_run(home, "verify", "--read-data").code == 0
