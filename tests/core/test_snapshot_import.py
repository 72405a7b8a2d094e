"""Import as a backup run: snapshots, idempotency, point-in-time restore, changelog, rebuild."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime

import pytest

from tests.core.helpers import (
    epoch,
    init_vault,
    maildir_file,
    make_maildir,
    read_maildir,
    read_messages,
    set_maildir_flags,
    sha,
)
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run


def _now() -> str:
    time.sleep(0.002)  # entries carry microsecond times: make "before" and "after" distinct
    stamp = datetime.now(UTC).isoformat()
    time.sleep(0.002)
    return stamp


def _ledger_size(home) -> int:
    return json.loads(vaultctl_run(home, "status", "--json").out)["ledger_entries"]


@pytest.fixture
def corpus_300(spamassassin_dir):
    return message_files(spamassassin_dir / "easy-ham-1")[:300]


def test_snapshot_runs_record_appends_expunges_and_flag_changes(tmp_path, corpus_300):
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", corpus_300, flags={0: ["\\Seen"], 1: ["\\Flagged", "\\Seen"]})
    original = {sha(f.read_bytes()) for f in corpus_300}

    first = vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
    assert first.code == 0, first
    report = json.loads(first.out)
    assert (report["appended"], report["expunged"], report["flag_changes"]) == (300, 0, 0)
    t1 = _now()

    # Nothing changed: nothing recorded, not even a run entry.
    size = _ledger_size(home)
    again = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (again["appended"], again["expunged"], again["flag_changes"], again["unchanged"]) == (0, 0, 0, 300)
    assert _ledger_size(home) == size

    # The mailbox changes: 20 deleted, message 0 loses \Seen, message 5 gains \Answered.
    gone = {sha(maildir_file(box, n).read_bytes()) for n in range(100, 120)}
    for n in range(100, 120):
        maildir_file(box, n).unlink()
    set_maildir_flags(box, 0, [])
    set_maildir_flags(box, 5, ["\\Answered"])
    second = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (second["appended"], second["expunged"], second["flag_changes"]) == (0, 20, 2)
    t2 = _now()

    # Restore as at t1: all 300, byte-identical, flags and internal dates as they were.
    r = vaultctl_run(
        home, "restore", "--mailbox", "user/jane/INBOX", "--at", t1, "--to", f"maildir:{tmp_path / 'at-t1'}"
    )
    assert r.code == 0, r
    at_t1 = read_maildir(tmp_path / "at-t1")
    assert set(at_t1) == original and sum(map(len, at_t1.values())) == 300
    first_msg = sha(corpus_300[0].read_bytes())
    assert at_t1[first_msg] == [(["\\Seen"], epoch(0))]
    assert at_t1[sha(corpus_300[5].read_bytes())] == [([], epoch(5))]

    # Restore now: the deleted ones are gone, flags as changed.
    r = vaultctl_run(
        home, "restore", "--mailbox", "user/jane/INBOX", "--at", t2, "--to", f"maildir:{tmp_path / 'at-t2'}"
    )
    assert r.code == 0, r
    at_t2 = read_maildir(tmp_path / "at-t2")
    assert set(at_t2) == original - gone
    assert at_t2[first_msg] == [([], epoch(0))]
    assert at_t2[sha(corpus_300[5].read_bytes())] == [(["\\Answered"], epoch(5))]


def test_changelog_of_an_item_and_a_mailbox(tmp_path, corpus_300):
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", corpus_300[:5])
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    set_maildir_flags(box, 2, ["\\Seen"])
    maildir_file(box, 2).unlink()
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    set_maildir_flags(box, 3, ["\\Flagged"])
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")

    entries = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    kinds = [e["kind"] for e in entries]
    assert kinds.count("message.appended") == 5
    assert kinds.count("message.expunged") == 1
    assert kinds[0] == "folder.created"
    flagged = [e for e in entries if e["kind"] == "flags.set"]
    assert len(flagged) == 1 and flagged[0]["data"]["flags"] == ["\\Flagged"]

    item = flagged[0]["item"]
    history = json.loads(vaultctl_run(home, "log", "--item", item, "--json").out)
    assert [e["kind"] for e in history] == ["message.appended", "flags.set"]
    assert all(e["item"] == item for e in history)
    text = vaultctl_run(home, "log", "--item", item)
    assert text.code == 0 and "flags.set" in text.out and "\\Flagged" in text.out


def test_restore_one_uid_to_mbox(tmp_path, corpus_300):
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", corpus_300[:10])
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    entries = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    appended = [e for e in entries if e["kind"] == "message.appended"]
    wanted = appended[3]
    uid = wanted["item"].rsplit(":", 1)[1]
    r = vaultctl_run(
        home, "restore", "--mailbox", "user/jane/INBOX", "--uid", uid, "--to", f"mbox:{tmp_path / 'one.mbox'}"
    )
    assert r.code == 0, r
    restored = read_messages(tmp_path / "one.mbox")
    assert [("sha256:" + sha(m)) for m in restored] == [wanted["data"]["blob"]]
    # the restore itself is in the ledger
    log = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    assert log[-1]["kind"] == "restore.done" and log[-1]["data"]["restored"] == 1


def test_rebuild_gives_identical_answers(tmp_path, corpus_300):
    home = init_vault(tmp_path / "vault")
    box = make_maildir(tmp_path / "Maildir", corpus_300[:60])
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    t1 = _now()
    for n in range(10):
        maildir_file(box, n).unlink()
    set_maildir_flags(box, 20, ["\\Seen"])
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")

    def answers():
        from vault.archive import Vault
        from vault.config import Config
        from vault.index.indexer import SearchIndex

        with Vault.open(Config.load(home)) as v:
            inbox = v.catalog.folder_id("user/jane/INBOX")
            assert inbox is not None
            return (
                v.catalog.dump(),
                v.catalog.items_at(inbox, t1),
                json.loads(vaultctl_run(home, "ls", "--json").out),
                SearchIndex.open(home / "index").search("size:>0", v.catalog, limit=1000),
            )

    before = answers()
    assert len(before[3]) == 60
    shutil.rmtree(home / "index")  # the index too is derived: rebuild recreates it
    r = vaultctl_run(home, "rebuild")
    assert r.code == 0, r
    assert answers() == before
