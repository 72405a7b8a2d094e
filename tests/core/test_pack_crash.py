"""A writer killed after a pack reached the backend and before its pack index did (crash point
``store.pack-written``, vault/faults.py): the pack is a leftover no location names, the import
run again archives every message once, and verify passes. What the location index does place
in a pack without an index is still damage (test_derived_state.py)."""

from __future__ import annotations

import json
import os

import pytest

from tests.core.helpers import init_vault, make_maildir
from tests.fixtures.corpus import message_files
from vault.faults import ENV
from vault.store.cas import PACK_WRITTEN
from vault.testing.cli import vaultctl, vaultctl_run


@pytest.mark.parametrize("encryption", ["none", "default"])
def test_an_import_killed_between_pack_and_index_loses_nothing_and_verifies(
    tmp_path, spamassassin_dir, encryption
):
    settings = {"store.encryption": "none"} if encryption == "none" else {}
    home = init_vault(tmp_path / "vault", **settings)
    files = message_files(spamassassin_dir / "easy-ham-1")[:41]
    maildir = make_maildir(tmp_path / "inbox", files[:40])

    env = {**os.environ, ENV: PACK_WRITTEN}
    killed = vaultctl(home, "import", str(maildir), "--mailbox", "user/jane", env=env)
    assert killed.returncode == -9, (killed.returncode, killed.stdout, killed.stderr)
    packs = list((home / "blobs" / "packs").rglob("*"))
    assert [p for p in packs if p.is_file()], "the pack reached the backend before the kill"
    if encryption == "none":
        assert not list((home / "blobs" / "index").rglob("*")), "and its index did not"

    # a message more by the time it runs again: its pack differs from the leftover (a pack is
    # named by its content, and the same content again would be the same pack)
    make_maildir(maildir, files)
    again = vaultctl_run(home, "import", str(maildir), "--mailbox", "user/jane", "--json")
    assert again.code == 0, again
    listed = vaultctl_run(home, "ls", "--json")
    assert listed.code == 0, listed
    assert [(f["name"], f["messages"]) for f in json.loads(listed.out)] == [("user/jane", len(files))]

    verify = vaultctl_run(home, "verify", "--read-data")
    assert verify.code == 0, verify
    # repair makes the leftover an ordinary pack (its blobs are listed twice, which verify allows)
    repaired = vaultctl_run(home, "verify", "--repair")
    assert repaired.code == 0, repaired
    assert vaultctl_run(home, "verify", "--read-data").code == 0
