"""An import killed with SIGKILL resumes cleanly: every message archived exactly once."""

from __future__ import annotations

import json
import signal
import time

from tests.core.helpers import init_vault, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_process, vaultctl_run


def _committed(home) -> int:
    from vault.store.catalog import Catalog

    c = Catalog(home / "catalog.sqlite")
    try:
        return c.counts()["items"]
    finally:
        c.close()


def test_sigkill_mid_import_then_rerun(tmp_path, spamassassin_dir):
    files = message_files(spamassassin_dir)[:1500]
    home = init_vault(tmp_path / "vault", **{"import.batch_messages": 50})
    box = make_maildir(tmp_path / "Maildir", files)
    proc = vaultctl_process(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    deadline = time.monotonic() + 120
    while _committed(home) < 100:  # wait until some batches are committed
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _committed(home)
    assert 0 < partial < len(files), "the kill must land mid-run for this test to mean anything"

    r = vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    # committed batches are not redone (the catalog may even have been a batch behind
    # the ledger at the kill: it catches up when the vault is opened)
    assert report["appended"] <= len(files) - partial
    assert report["expunged"] == 0

    assert vaultctl_run(home, "verify", "--read-data").code == 0
    entries = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    keys = [e["data"]["key"] for e in entries if e["kind"] == "message.appended"]
    assert len(keys) == len(set(keys)) == len(files)
    assert (
        vaultctl_run(
            home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{tmp_path / 'out'}"
        ).code
        == 0
    )
    restored = read_maildir(tmp_path / "out")
    assert sum(map(len, restored.values())) == len(files)
    assert set(restored) == {sha(f.read_bytes()) for f in files}
