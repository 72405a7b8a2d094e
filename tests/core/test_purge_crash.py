"""A purge killed at each of its named points (vault/faults.py), then the vault reopened:
whatever the crash interrupted is finished, nothing retained is lost, nothing purged returns.

The vault: bob's Junk holds 10 spam and 5 ham messages; jane's INBOX holds the same 5 ham
(shared blobs). The junk rule purges bob's Junk: the 10 spam blobs must go, the 5 ham stay.
With the default pack size the 15 blobs share one pack (deleting means rewriting it); with
``pack_size = 1`` every blob has its own pack (deleting means removing whole packs).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.core.helpers import init_vault, make_maildir
from tests.fixtures.corpus import message_files
from tests.policy.helpers import TWO_ADMINS, request_id
from vault.archive import Vault
from vault.config import Config
from vault.faults import ENV
from vault.store.cas import ContentStore
from vault.testing.cli import REPO, vaultctl, vaultctl_run

JUNK_RULE = '[[rule]]\nname = "junk"\npurge_after = "30d"\n[rule.match]\njunk = true\n'
LATER = "2003-01-01T00:00Z"  # the corpus is from 2002: all of bob's Junk is past 30 days

REPACK_POINTS = [
    "purge.recorded",
    "purge.repacked",
    "purge.deleted-packs",
    "purge.deleted-index",
    "purge.collected",
]
WHOLE_PACK_POINTS = ["purge.recorded", "purge.deleted-packs", "purge.deleted-index", "purge.collected"]


def _vault(tmp_path, spamassassin_dir, pack_size: int | None):
    home = init_vault(
        tmp_path / "vault", **TWO_ADMINS, **({"store.pack_size": pack_size} if pack_size else {})
    )
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "rules.toml").write_text(JUNK_RULE)
    spam = message_files(spamassassin_dir / "spam-1")[:10]
    ham = message_files(spamassassin_dir / "easy-ham-1")[:5]
    for box, files, mailbox in (("junk", spam + ham, "user/bob/Junk"), ("inbox", ham, "user/jane/INBOX")):
        assert (
            vaultctl_run(home, "import", str(make_maildir(tmp_path / box, files)), "--mailbox", mailbox).code
            == 0
        )
    with Vault.open(Config.load(home)) as vault:
        name = vault.catalog.folder_name
        rows = [(name(r["mailbox_id"]), r["blob"]) for r in vault.catalog.all_items()]
    junk = {blob for folder, blob in rows if folder == "user/bob/Junk"}
    kept = {blob for folder, blob in rows if folder == "user/jane"}
    assert len(junk - kept) == 10 and len(kept) == 5
    return home, junk - kept, kept


def _killed(argv_or_code, home, point: str, *, python: bool = False):
    env = {**__import__("os").environ, ENV: point}
    if python:
        done = subprocess.run(
            [sys.executable, "-c", argv_or_code], cwd=REPO, env=env, capture_output=True, text=True
        )
    else:
        done = vaultctl(home, *argv_or_code, env=env)
    assert done.returncode == -9, (point, done.returncode, done.stdout, done.stderr)


def _in_backend(home) -> set[str]:
    """The blobs the backend's own pack indexes list: what a rebuild of the store index (or
    anyone holding the bucket) would find."""
    store = ContentStore.from_config(Config.load(home))
    try:
        store.rebuild_index()
        return {m.blob for _, m in store.located()}
    finally:
        store.close()


def _restored(home, mailbox, out) -> int:
    done = vaultctl(home, "restore", "--mailbox", mailbox, "--to", f"maildir:{out}", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["restored"]


def _check_finished(home, tmp_path, spam: set[str], kept: set[str]) -> None:
    ok = vaultctl(home, "verify", "--json")
    assert ok.returncode == 0, ok.stdout
    in_backend = _in_backend(home)
    assert not spam & in_backend  # the purged content is gone from the backend itself
    assert kept <= in_backend
    rebuilt = vaultctl(home, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr  # and a rebuild brings none of it back
    assert _restored(home, "user/bob/Junk", tmp_path / "junk-out") == 0
    assert _restored(home, "user/jane/INBOX", tmp_path / "jane-out") == 5
    assert vaultctl(home, "verify", "--read-data").returncode == 0


@pytest.mark.parametrize(
    "pack_size,point",
    [(None, p) for p in REPACK_POINTS] + [(1, p) for p in WHOLE_PACK_POINTS],
)
def test_a_sweep_killed_anywhere_is_finished_by_the_next_open(tmp_path, spamassassin_dir, pack_size, point):
    home, spam, kept = _vault(tmp_path, spamassassin_dir, pack_size)
    _killed(["retention", "sweep", "--now", LATER, "--yes"], home, point)

    # before any writer opens it, verify (read-only) sees what is owed, from the ledger
    before = vaultctl(home, "verify", "--json")
    owed = [
        p for p in json.loads(before.stdout)["problems"] if "purged items is still in the store" in p["what"]
    ]
    if point == "purge.collected":  # killed after the last deletion: only the intent file is left
        assert before.returncode == 0 and owed == []
    else:
        assert before.returncode == 1 and owed, before.stdout

    with Vault.open(Config.load(home), writer=True) as vault:  # the next writer: finishes it
        assert vault.purge_finished is not None
        if point == "purge.recorded":  # killed before any deletion: all of it was owed
            assert vault.purge_finished["blobs"] == len(spam)
    _check_finished(home, tmp_path, spam, kept)
    with Vault.open(Config.load(home), writer=True) as vault:
        assert vault.purge_finished is None  # nothing owed any more


def test_verify_repair_finishes_a_killed_purge(tmp_path, spamassassin_dir):
    home, spam, kept = _vault(tmp_path, spamassassin_dir, None)
    _killed(["retention", "sweep", "--now", LATER, "--yes"], home, "purge.recorded")
    repaired = vaultctl(home, "verify", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert json.loads(repaired.stdout)["repaired"] == {"purged_blobs_deleted": len(spam)}
    _check_finished(home, tmp_path, spam, kept)


def test_an_erasure_killed_after_its_commit_is_whole_and_finished(tmp_path, spamassassin_dir):
    home, spam, kept = _vault(tmp_path, spamassassin_dir, None)
    rid = request_id(
        vaultctl_run(home, "erase", "--custodian", "bob", "--reason", "test erasure", "--json", "--yes")
    )
    approve = (
        f"from tests.policy.helpers import approve_erasure_as\napprove_erasure_as({str(home)!r}, {rid!r})\n"
    )
    _killed(approve, home, "purge.recorded", python=True)
    with Vault.open(Config.load(home)) as vault:
        kinds = [e.kind for e in vault.ledger.entries()]
    assert kinds.count("retention.purged") == 15 and kinds[-1] == "erasure.certified"  # one commit: both
    with Vault.open(Config.load(home), writer=True) as vault:  # the next writer finishes it
        assert vault.purge_finished == {"blobs": len(spam), "packs_removed": 1, "packs_rewritten": 1}
    _check_finished(home, tmp_path, spam, kept)
    erased = json.loads(vaultctl(home, "audit", "--json").stdout)
    assert any(e.get("kind") == "erasure.certified" for e in erased), erased
