"""Point-in-time restore through its Python API: a snapshot is computed once and restored as it is."""

from __future__ import annotations

import pytest

from tests.core.helpers import init_vault, maildir_file, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.archive import Vault
from vault.config import Config
from vault.entries import Kind
from vault.model import now
from vault.restore.pointintime import RestoreError, restore_snapshot, snapshot
from vault.testing.cli import vaultctl_run


def test_a_snapshot_is_restored_as_taken(tmp_path, spamassassin_dir):
    files = message_files(spamassassin_dir / "easy-ham-1")[:20]
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", files, flags={3: ["\\Seen"], 4: ["\\Flagged"]})
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    config = Config.load(home)
    with Vault.open(config) as vault:
        snap = snapshot(vault, "user/jane/INBOX", now())
    assert len(snap.items) == 20
    # the folder changes after the snapshot was taken: the restore writes the snapshot
    gone = sha(maildir_file(box, 0).read_bytes())
    maildir_file(box, 0).unlink()
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    with Vault.open(config, writer=True) as vault:
        report = restore_snapshot(vault, snap, f"maildir:{tmp_path / 'out'}", actor="tester")
        audit = [e for e in vault.ledger.entries() if e.kind == Kind.RESTORE_DONE]
    assert report.items == [i["item"] for i in snap.items] and report.restored == 20
    restored = read_maildir(tmp_path / "out")
    assert set(restored) == {sha(f.read_bytes()) for f in files} and gone in restored
    assert restored[sha(files[3].read_bytes())][0][0] == ["\\Seen"]
    assert restored[sha(files[4].read_bytes())][0][0] == ["\\Flagged"]
    assert [(e.item, e.actor, e.data["restored"], e.data["at"]) for e in audit] == [
        (snap.mailbox_id, "tester", 20, snap.at)
    ]


def test_a_snapshot_of_an_unknown_folder_or_uid_is_refused(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", message_files(spamassassin_dir / "spam-1")[:3])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    with Vault.open(Config.load(home)) as vault:
        with pytest.raises(RestoreError, match="user/jane/Nope"):
            snapshot(vault, "user/jane/Nope", now())
        with pytest.raises(RestoreError, match="UID 99"):
            snapshot(vault, "user/jane/INBOX", now(), uid=99)
        assert [i["uid"] for i in snapshot(vault, "user/jane/INBOX", now(), uid=2).items] == [2]
