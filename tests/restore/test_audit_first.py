"""Audit first (issue 14, item 5): a restore or an export whose audit entry cannot be
recorded writes nothing. Here another writer (an import, say) holds the vault and no vault
service runs to record the entry for it."""

from __future__ import annotations

import json

from tests.core.helpers import init_vault, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.archive import Vault
from vault.config import Config
from vault.testing.cli import vaultctl_run


def _kinds(home) -> list[str]:
    r = vaultctl_run(home, "audit", "--json")
    assert r.code == 0, r
    return [e["kind"] for e in json.loads(r.out)]


def test_a_restore_or_export_that_cannot_be_audited_writes_nothing(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "easy-ham-1")[:12]
    box = make_maildir(tmp_path / "Maildir", files)
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    out, export = tmp_path / "restored", tmp_path / "export"
    holder = Vault.open(Config.load(home), writer=True)  # another writer, mid-import
    try:
        for args in (
            ("restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}"),
            ("restore", "--mailbox", "user/jane/INBOX", "--to", f"mbox:{tmp_path / 'one.mbox'}"),
            ("search", "custodian:jane", "--export", str(export)),
        ):
            r = vaultctl_run(home, *args)
            assert r.code == 1 and "Traceback" not in r.err, r
            assert "another command writes the vault" in r.err, r
    finally:
        holder.close()
    assert not out.exists() and not export.exists() and not (tmp_path / "one.mbox").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Maildir", "vault"]  # nothing left aside
    assert not {"restore.done", "export.made"} & set(_kinds(home))

    # with the vault free, both are recorded and written
    assert vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}").code == 0
    assert set(read_maildir(out)) == {sha(f.read_bytes()) for f in files}
    made = vaultctl_run(home, "search", "custodian:jane", "--export", str(export))
    assert made.code == 0, made
    key = home / "keys" / "ledger.ed25519.pub"
    assert vaultctl_run(home, "verify-export", str(export), "--key", str(key)).code == 0
    assert {"restore.done", "export.made"} <= set(_kinds(home))
