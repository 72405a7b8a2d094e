"""Every source format imports, and restores byte-identical, with real and malformed mail."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC

from tests.core.helpers import epoch, init_vault, read_maildir, read_messages, sha
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run

CYRUS_HEADER_MAGIC = (
    b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
    b'"The best thing about this system was that it had lots of goals."\n'
    b"\t--Jim Morris on Andrew\n"
)


def _restore_digests(home, tmp_path, mailbox: str) -> dict:
    out = tmp_path / ("restored-" + mailbox.replace("/", "_"))
    r = vaultctl_run(home, "restore", "--mailbox", mailbox, "--to", f"maildir:{out}")
    assert r.code == 0, r
    return read_maildir(out)


def test_edge_case_corpus_round_trips_byte_identical(tmp_path, edge_cases_dir):
    every = message_files(edge_cases_dir)
    files = [f for f in every if f.stat().st_size]
    assert len(files) >= 100
    home = init_vault(tmp_path / "vault")
    r = vaultctl_run(
        home, "import", str(edge_cases_dir), "--mailbox", "user/qa/edge", "--format", "eml", "--json"
    )
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["appended"] == len(files), report["problems"]
    # the corpus holds one empty file: reported by name, not archived as a message
    assert sorted(p["path"] for p in report["problems"] if "empty" in p["reason"]) == sorted(
        str(f) for f in every if not f.stat().st_size
    )
    restored = _restore_digests(home, tmp_path, "user/qa/edge")
    expected: dict[str, int] = {}
    for f in files:
        expected.setdefault(sha(f.read_bytes()), 0)
        expected[sha(f.read_bytes())] += 1
    assert {k: len(v) for k, v in restored.items()} == expected
    assert vaultctl_run(home, "verify", "--read-data").code == 0


def test_mbox_import_and_mbox_restore_round_trip(tmp_path, spamassassin_dir):
    from vault.restore.targets import open_target

    files = message_files(spamassassin_dir / "hard-ham-1")[:40]
    src = tmp_path / "in.mbox"
    target = open_target(f"mbox:{src}")
    for n, f in enumerate(files):
        from datetime import datetime

        target.add(f.read_bytes(), flags=[], internal_date=datetime.fromtimestamp(epoch(n), UTC), uid=n + 1)
    target.close()
    home = init_vault(tmp_path / "vault")
    r = vaultctl_run(home, "import", str(src), "--mailbox", "user/jane/hard", "--json")
    assert r.code == 0 and json.loads(r.out)["appended"] == 40, r
    out = tmp_path / "out.mbox"
    assert vaultctl_run(home, "restore", "--mailbox", "user/jane/hard", "--to", f"mbox:{out}").code == 0
    back = read_messages(out)
    assert sorted(map(sha, back)) == sorted(sha(f.read_bytes()) for f in files)


def test_cyrus_folder_keeps_uids_and_mailbox_id(tmp_path, spamassassin_dir):
    files = message_files(spamassassin_dir / "easy-ham-1")[:12]
    spool = tmp_path / "spool" / "f" / "n" / "fngchpsey72ifuhlby002uup"
    spool.mkdir(parents=True)
    (spool / "cyrus.header").write_bytes(
        CYRUS_HEADER_MAGIC + b"user.jane\tfngchpsey72ifuhlby002uup\n\njane\tlrswipkxtecdan\t\n"
    )
    uids = [3, 4, 7, 9, 10, 11, 20, 21, 22, 30, 31, 40]
    for uid, f in zip(uids, files):
        shutil.copy(f, spool / f"{uid}.")
        os.utime(spool / f"{uid}.", (epoch(uid), epoch(uid)))
    home = init_vault(tmp_path / "vault")
    r = vaultctl_run(home, "import", str(spool), "--mailbox", "user/jane/INBOX", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["appended"] == 12
    folders = json.loads(vaultctl_run(home, "ls", "--json").out)
    assert [f["mailbox_id"] for f in folders] == ["fngchpsey72ifuhlby002uup"]
    entries = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    appended = {
        int(e["item"].rsplit(":", 1)[1]): e["data"]["blob"]
        for e in entries
        if e["kind"] == "message.appended"
    }
    assert appended == {uid: "sha256:" + sha(f.read_bytes()) for uid, f in zip(uids, files)}
    restored = _restore_digests(home, tmp_path, "user/jane/INBOX")
    assert {k: [m for _, m in v] for k, v in restored.items()} == {
        sha(f.read_bytes()): [epoch(uid)] for uid, f in zip(uids, files)
    }
    # a message removed from the spool is expunged by the next run
    (spool / "9.").unlink()
    r = json.loads(vaultctl_run(home, "import", str(spool), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (r["appended"], r["expunged"]) == (0, 1)
