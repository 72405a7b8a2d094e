"""Encryption at rest through vaultctl (issue 13 item 2): init, import corpus mail, restore,
verify, the key commands, a wrong or missing key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.helpers import init_s3_vault, init_vault, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.store.crypto import PACK_HEADER
from vault.testing.cli import vaultctl_run

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BOX = "user/jane/INBOX"


def subjects(files: list[Path]) -> list[bytes]:
    """The Subject line of each message, where long enough to mean something."""
    out = []
    for f in files:
        for line in f.read_bytes().splitlines():
            if line.lower().startswith(b"subject:"):
                if len(line[8:].strip()) >= 12:
                    out.append(line[8:].strip())
                break
    return out


def assert_sealed(objects: dict[str, bytes], files: list[Path]) -> None:
    """No object holds a zstd frame's magic or a subject line of the mail imported."""
    subs = subjects(files)
    assert len(subs) > 10 and objects
    for name, data in objects.items():
        assert ZSTD_MAGIC not in data, f"zstd frame magic in {name}"
        for s in subs:
            assert s not in data, f"subject {s!r} in {name}"


def store_objects(home: Path) -> dict[str, bytes]:
    root = home / "blobs"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def import_box(home: Path, box: Path, mailbox: str = BOX) -> dict:
    r = vaultctl_run(home, "import", str(box), "--mailbox", mailbox, "--json")
    assert r.code == 0, r
    return json.loads(r.out)


def restored(home: Path, out: Path, mailbox: str = BOX):
    return vaultctl_run(home, "restore", "--mailbox", mailbox, "--to", f"maildir:{out}")


@pytest.fixture
def corpus(spamassassin_dir) -> list[Path]:
    return message_files(spamassassin_dir / "easy-ham-1")[:80]


def test_import_leaves_nothing_readable_and_restores(tmp_path, corpus):
    home = tmp_path / "vault"
    r = vaultctl_run(home, "init")
    assert r.code == 0 and "store key" in r.out and "BACK IT UP" in r.out, r
    assert import_box(home, make_maildir(tmp_path / "Maildir", corpus))["appended"] == len(corpus)
    objects = store_objects(home)
    assert any(k.startswith("packs/") for k in objects) and "config" in objects
    assert not any(k.startswith("index/") for k in objects)  # each pack holds its index, sealed
    assert_sealed(objects, corpus)
    for f in corpus:  # object names reveal no content hash
        assert not any(sha(f.read_bytes()) in k for k in objects)
    r = restored(home, tmp_path / "out")
    assert r.code == 0, r
    assert set(read_maildir(tmp_path / "out")) == {sha(f.read_bytes()) for f in corpus}
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    # exports keep the plaintext sha256 a court checks
    exp = tmp_path / "export"
    r = vaultctl_run(home, "search", "custodian:jane", "--export", str(exp), "--limit", "1")
    assert r.code == 0, r
    manifest = (exp / "manifest.json").read_text()
    assert all(sha(f.read_bytes()) in manifest for f in corpus[:5])


def test_unencrypted_vault_says_what_it_gives_up_and_still_works(tmp_path, corpus):
    home = tmp_path / "vault"
    r = vaultctl_run(home, "init", "--encryption", "none")
    assert r.code == 0 and "NOT encrypted" in r.out, r
    # a config written before encryption existed has none of its keys: it reads as none
    config = home / "config.toml"
    new_keys = (
        'encryption = "none"',
        'key_path = "keys/store.key"',
        'passphrase = ""',
        'passphrase_file = ""',
    )
    config.write_text("".join(ln for ln in config.read_text().splitlines(True) if ln.strip() not in new_keys))
    assert "keys/store.key" not in config.read_text()
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:20]))
    objects = store_objects(home)
    assert any(ZSTD_MAGIC in d for d in objects.values())  # what the encrypted test rules out
    assert "config" not in objects
    assert restored(home, tmp_path / "out").code == 0
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    # an unencrypted store is never taken for an encrypted one, nor the other way round
    config.write_text(config.read_text().replace("[store]\n", '[store]\nencryption = "keyfile"\n'))
    r = vaultctl_run(home, "verify")
    assert r.code == 1 and "key file" in r.err and "Traceback" not in r.err, r


def test_flipped_byte_in_a_pack_is_an_authentication_failure_naming_it(tmp_path, corpus):
    home = init_vault(tmp_path / "vault")
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:30]))
    packs = sorted((home / "blobs" / "packs").rglob("*"))
    pack = next(p for p in packs if p.is_file())
    data = bytearray(pack.read_bytes())
    data[len(PACK_HEADER) + len(data) // 2] ^= 0x20
    pack.write_bytes(bytes(data))
    r = vaultctl_run(home, "verify", "--read-data")
    assert r.code == 3, r  # the ledger holds; a message cannot be read
    assert "authentication failed" in r.out + r.err and pack.name in r.out + r.err, r
    r = restored(home, tmp_path / "out")
    assert r.code != 0 and pack.name in r.out + r.err and "authentication failed" in r.out + r.err, r


def test_flipped_byte_in_a_pack_trailer_is_a_damaged_pack_named_and_repaired(tmp_path, corpus):
    """The trailer is the pack's index: damaged, verify names the pack (its blobs still read,
    each record authenticating alone), and ``verify --repair`` writes them into a new pack."""
    home = init_vault(tmp_path / "vault")
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:30]))
    pack = max(
        (p for p in (home / "blobs" / "packs").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    data = bytearray(pack.read_bytes())
    data[-10] ^= 0x04  # inside the sealed index (the last 4 bytes are its length)
    pack.write_bytes(bytes(data))
    r = vaultctl_run(home, "verify", "--json")
    assert r.code == 1, r  # derived and repairable: every message still reads
    problems = json.loads(r.out)["problems"]
    damaged = [p for p in problems if p["where"] == f"pack {pack.name}"]
    assert (
        len(damaged) == 1
        and "damaged" in damaged[0]["what"]
        and "authentication failed" in damaged[0]["what"]
    )
    assert restored(home, tmp_path / "before").code == 0
    r = vaultctl_run(home, "verify", "--repair")
    assert r.code == 0 and f"pack {pack.name} (its sealed index damaged) written again" in r.out, r
    assert not pack.exists()
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    r = restored(home, tmp_path / "out")
    assert r.code == 0, r
    assert set(read_maildir(tmp_path / "out")) == {sha(f.read_bytes()) for f in corpus[:30]}


def test_passphrase_wrong_missing_changed(tmp_path, corpus, monkeypatch):
    home = tmp_path / "vault"
    monkeypatch.setenv("VAULT_STORE_PASSPHRASE", "correct horse battery staple")
    r = vaultctl_run(home, "init", "--encryption", "passphrase")
    assert r.code == 0 and "passphrase" in r.out, r
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:20]))
    key = json.loads((home / "keys" / "store.key").read_text())
    assert key["mode"] == "passphrase" and "key" not in key and key["kdf"]["name"] == "scrypt"
    # damage every pack and index: a wrong passphrase is refused before any of it is read
    for p in (home / "blobs").rglob("*"):
        if p.is_file() and p.name != "config":
            p.write_bytes(b"garbage")
    monkeypatch.setenv("VAULT_STORE_PASSPHRASE", "wrong")
    r = vaultctl_run(home, "ls")
    assert r.code == 1 and "wrong passphrase" in r.err and "Traceback" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    monkeypatch.delenv("VAULT_STORE_PASSPHRASE")
    r = vaultctl_run(home, "verify")
    assert r.code == 1 and "passphrase" in r.err and "none was given" in r.err, r


def test_change_passphrase_then_export_and_import(tmp_path, corpus, monkeypatch):
    home = tmp_path / "vault"
    monkeypatch.setenv("VAULT_STORE_PASSPHRASE", "old phrase")
    assert vaultctl_run(home, "init", "--encryption", "passphrase").code == 0
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:20]))
    before = store_objects(home)
    (tmp_path / "new").write_text("new phrase\n")
    r = vaultctl_run(home, "key", "change-passphrase", "--new-passphrase-file", str(tmp_path / "new"))
    assert r.code == 0, r
    assert store_objects(home) == before  # no data rewritten
    r = vaultctl_run(home, "verify", "--read-data")
    assert r.code == 1 and "wrong passphrase" in r.err, r  # the old one no longer opens it
    monkeypatch.setenv("VAULT_STORE_PASSPHRASE", "new phrase")
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    # a paper backup, then the key lost and put back
    r = vaultctl_run(home, "key", "export", str(tmp_path / "key.paper"), "--paper")
    assert r.code == 0, r
    (home / "keys" / "store.key").unlink()
    r = restored(home, tmp_path / "lost")
    assert r.code == 1 and "missing" in r.err and "key import" in r.err, r
    r = vaultctl_run(home, "key", "import", str(tmp_path / "key.paper"))
    assert r.code == 0, r
    r = restored(home, tmp_path / "out")
    assert r.code == 0, r
    assert set(read_maildir(tmp_path / "out")) == {sha(f.read_bytes()) for f in corpus[:20]}


def test_keyfile_export_import_and_a_foreign_key(tmp_path, corpus):
    home = init_vault(tmp_path / "vault")
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:10]))
    r = vaultctl_run(home, "key", "export", str(tmp_path / "backup.key"))
    assert r.code == 0, r
    assert (tmp_path / "backup.key").stat().st_mode & 0o077 == 0
    show = json.loads(vaultctl_run(home, "key", "show").out)
    assert show["mode"] == "keyfile" and "key" not in show and len(show["key_id"]) == 16
    # another vault's key is not this store's key: refused, nothing read; nor is the location
    # index, lost here, made anew from what that key cannot open
    other = init_vault(tmp_path / "other")
    for suffix in ("", "-wal", "-shm"):
        (home / f"store-index.sqlite{suffix}").unlink(missing_ok=True)
    (home / "keys" / "store.key").unlink()
    (home / "keys" / "store.key").write_bytes((other / "keys" / "store.key").read_bytes())
    r = restored(home, tmp_path / "foreign")
    assert r.code == 1 and "is not the key of" in r.err and "Traceback" not in r.err, r
    assert not (tmp_path / "foreign").exists() or not any((tmp_path / "foreign").rglob("*:2,*"))
    r = vaultctl_run(home, "verify")
    assert r.code == 1 and "is not the key of" in r.err, r
    r = vaultctl_run(home, "key", "import", str(other / "keys" / "store.key"))
    assert r.code == 1 and "is not the key of" in r.err, r
    (home / "keys" / "store.key").unlink()
    assert vaultctl_run(home, "key", "import", str(tmp_path / "backup.key")).code == 0
    assert restored(home, tmp_path / "out").code == 0
    assert len(read_maildir(tmp_path / "out")) == 10


def test_dedup_same_message_twice_one_blob(tmp_path, corpus):
    home = init_vault(tmp_path / "vault")
    import_box(home, make_maildir(tmp_path / "A", corpus[:5]), "user/jane/INBOX")
    packs = {k for k in store_objects(home) if k.startswith("packs/")}
    import_box(home, make_maildir(tmp_path / "B", corpus[:5]), "user/jane/Copy")
    assert {k for k in store_objects(home) if k.startswith("packs/")} == packs  # nothing new stored
    status = json.loads(vaultctl_run(home, "status", "--json").out)
    assert status["store_blobs"] == 5 and status["items"] == 10, status


@pytest.mark.s3
def test_s3_bucket_holds_nothing_readable(tmp_path, spamassassin_dir, s3_bucket):
    endpoint, bucket = s3_bucket
    home = init_s3_vault(tmp_path / "vault", endpoint, bucket)
    files = message_files(spamassassin_dir / "spam-1")[:60]
    assert import_box(home, make_maildir(tmp_path / "Maildir", files))["appended"] == 60
    client = endpoint.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "config" in keys and any(k.startswith("packs/") for k in keys)
    objects = {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    assert_sealed(objects, files)
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    r = restored(home, tmp_path / "out")
    assert r.code == 0, r
    assert set(read_maildir(tmp_path / "out")) == {sha(f.read_bytes()) for f in files}
    # a flipped byte in a pack in the bucket is named as the authentication failure it is
    pack = next(k for k in keys if k.startswith("packs/"))
    data = bytearray(objects[pack])
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=pack, Body=bytes(data))
    r = vaultctl_run(home, "verify", "--read-data")
    assert r.code == 3 and "authentication failed" in r.err and pack.rsplit("/", 1)[-1] in r.err, r


def _on_a_terminal(argv: list[str], answer: str, env: dict) -> tuple[int, str]:
    """Run argv with a pseudo-terminal as its controlling terminal, typing ``answer`` at the
    first prompt; its exit status and everything it printed."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its terminal
        os.execve(argv[0], argv, env)
    out, typed, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child is gone
            break
        if not chunk:
            break
        out += chunk
        if not typed and b"passphrase" in out:
            os.write(fd, answer.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_passphrase_from_a_file_or_asked_on_a_terminal(tmp_path, corpus, monkeypatch):
    import os

    from vault.testing.cli import vaultctl_argv

    monkeypatch.delenv("VAULT_STORE_PASSPHRASE", raising=False)
    home = tmp_path / "vault"
    (tmp_path / "phrase").write_text("typed phrase\n")
    r = vaultctl_run(
        home, "init", "--encryption", "passphrase", "--set", f"store.passphrase_file={tmp_path / 'phrase'}"
    )
    assert r.code == 0, r
    import_box(home, make_maildir(tmp_path / "Maildir", corpus[:5]))
    config = home / "config.toml"
    config.write_text(
        config.read_text().replace(f'passphrase_file = "{tmp_path / "phrase"}"', 'passphrase_file = ""')
    )
    r = vaultctl_run(home, "verify")  # no terminal, no passphrase: refused, nothing asked
    assert r.code == 1 and "none was given" in r.err, r
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    code, out = _on_a_terminal(vaultctl_argv("verify", "--read-data", home=home), "typed phrase", env)
    assert code == 0 and "store passphrase" in out and "typed phrase" not in out, out
    code, out = _on_a_terminal(vaultctl_argv("verify", home=home), "not it", env)
    assert code == 1 and "wrong passphrase" in out, out
