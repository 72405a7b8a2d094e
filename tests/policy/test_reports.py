"""Reports that tell the truth after a retention sweep and an erasure (ls, status, log,
restore, retention explain say which one took an item), and the guards on destructive and
error-prone commands (hold create, erase, retention sweep, rule files)."""

from __future__ import annotations

import json

from tests.core.helpers import init_vault, make_maildir, vaultctl_run
from tests.fixtures.corpus import message_files
from tests.policy.helpers import TWO_ADMINS, approve_erasure_as, request_id

JUNK = '[[rule]]\nname = "junk"\npurge_after = "30d"\n[rule.match]\njunk = true\n'
LATER = "2003-01-01T00:00Z"  # the corpus is from 2002


def _vault(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault", **TWO_ADMINS)
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "junk.toml").write_text(JUNK)
    spam = message_files(spamassassin_dir / "spam-1")[:6]
    ham = message_files(spamassassin_dir / "easy-ham-1")[:4]
    for box, files, mailbox in (("junk", spam, "user/bob/Junk"), ("inbox", ham, "user/jane/INBOX")):
        done = vaultctl_run(home, "import", str(make_maildir(tmp_path / box, files)), "--mailbox", mailbox)
        assert done.code == 0, done
    return home


def _json(home, *args):
    done = vaultctl_run(home, *args, "--json")
    assert done.code == 0, done
    return json.loads(done.out)


def test_ls_status_log_restore_and_explain_say_purged_or_erased(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir)
    junk_item = _json(home, "log", "--mailbox", "user/bob/Junk")[1]["item"]
    jane_item = _json(home, "log", "--mailbox", "user/jane/INBOX")[1]["item"]
    assert _json(home, "status")["items_present"] == 10

    swept = vaultctl_run(home, "retention", "sweep", "--now", LATER, "--yes")
    assert swept.code == 0, swept
    rid = request_id(
        vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR", "--json", "--yes")
    )
    approve_erasure_as(home, rid)

    folders = {f["name"]: f for f in _json(home, "ls")}
    assert (folders["user/bob/Junk"]["messages"], folders["user/bob/Junk"]["purged"]) == (0, 6)
    assert (folders["user/jane"]["messages"], folders["user/jane"]["erased"]) == (0, 4)
    listed = vaultctl_run(home, "ls").out
    assert "(6 purged by retention)" in listed and "(4 erased)" in listed

    status = _json(home, "status")
    assert status["items_present"] == 0
    assert (status["items_purged_by_retention"], status["items_erased"]) == (6, 4)
    assert status["blobs"] == 0  # what is left of the content: nothing

    junk_log = vaultctl_run(home, "log", "--item", junk_item).out
    assert "purged by retention rule junk" in junk_log and "erasure" not in junk_log
    jane_log = vaultctl_run(home, "log", "--item", jane_item).out
    assert f"erased by erasure request {rid}" in jane_log and "retention rule" not in jane_log

    for mailbox, expected, other in (
        ("user/jane/INBOX", f"erased by erasure request {rid}", "retention"),
        ("user/bob/Junk", "purged by retention rule junk", "erasure"),
    ):
        out = tmp_path / mailbox.replace("/", "_")
        restored = vaultctl_run(
            home, "restore", "--mailbox", mailbox, "--at", "now", "--to", f"maildir:{out}"
        )
        assert restored.code == 0, restored
        assert "restored 0 messages" in restored.out
        assert expected in restored.err and other not in restored.err, restored
    report = _json(home, "restore", "--mailbox", "user/bob/Junk", "--to", f"maildir:{tmp_path / 'again'}")
    assert len(report["removed"]) == 6
    assert all(v.startswith("purged by retention rule junk") for v in report["removed"].values())

    explained = vaultctl_run(home, "retention", "explain", junk_item).out
    assert explained.splitlines()[-1].startswith("decision: purged: purged by retention rule junk"), explained
    erased = vaultctl_run(home, "retention", "explain", jane_item).out
    assert erased.splitlines()[-1].startswith(f"decision: erased: erased by erasure request {rid}"), erased


def _hold(home, matter, *args):
    return vaultctl_run(home, "hold", "create", matter, "--reason", "litigation", *args)


def test_hold_create_refuses_a_broken_query_and_unknown_custodians_unless_forced(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir)
    broken = _hold(home, "case-1", "--custodian", "jane", "--query", "subject:(money")
    assert broken.code == 1 and "does not parse" in broken.err and "--force" in broken.err, broken
    unknown = _hold(home, "case-2", "--custodian", "jnae", "--custodian", "bob")
    assert unknown.code == 1 and "'jnae' unknown to the archive" in unknown.err and "'bob'" not in unknown.err
    assert _json(home, "hold", "list") == []  # nothing placed
    assert _hold(home, "case-1", "--custodian", "jane", "--query", "subject:(money", "--force").code == 0
    assert _hold(home, "case-2", "--custodian", "jnae", "--force").code == 0
    assert _hold(home, "case-3", "--custodian", "JANE", "--query", "subject:money").code == 0
    assert sorted(h["matter"] for h in _json(home, "hold", "list")) == ["case-1", "case-2", "case-3"]


def test_sweep_and_erase_list_what_they_remove_and_need_yes_off_a_terminal(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir)
    size = _json(home, "status")["ledger_entries"]
    unasked = vaultctl_run(home, "retention", "sweep", "--now", LATER)
    assert unasked.code == 1 and "stdin is not a terminal" in unasked.err and "--yes" in unasked.err
    assert "purges 6 item(s)" in unasked.err and unasked.err.count("(user/bob/Junk): rule junk") == 6
    erase = vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR")
    assert erase.code == 1 and "--yes" in erase.err and erase.err.count("  user/jane  ") == 4
    assert _json(home, "status")["ledger_entries"] == size  # nothing recorded, nothing purged
    assert _json(home, "status")["items_present"] == 10
    # a dry run needs no --yes; with --yes both go ahead
    assert vaultctl_run(home, "retention", "sweep", "--now", LATER, "--dry-run").code == 0
    assert vaultctl_run(home, "retention", "sweep", "--now", LATER, "--yes").code == 0
    rid = request_id(
        vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR", "--json", "--yes")
    )
    approving = vaultctl_run(home, "erase", "approve", rid)
    assert approving.code == 1 and "--yes" in approving.err
    assert f"approving erasure request {rid} erases 4 item(s) of jane for good" in approving.err
    assert _json(home, "status")["items_present"] == 4
