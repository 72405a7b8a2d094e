"""Retention sweeps and holds through vaultctl, moving through time with --now (no sleeping)."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from tests.core.helpers import init_vault, make_maildir, vaultctl_run
from tests.fixtures.corpus import message_files
from tests.policy.helpers import SECOND_ADMIN, TWO_ADMINS, erase, ledger_entries, release

JUNK_RULE = """
[[rule]]
name = "junk"
purge_after = "30d"
[rule.match]
junk = true
"""
KEEP_INBOX = """
[[rule]]
name = "inbox"
keep_for = "1y"
[rule.match]
folders = ["user/*/INBOX"]
"""


def _vault(tmp_path, spamassassin_dir, rules: str):
    home = init_vault(tmp_path / "vault", **TWO_ADMINS)
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "rules.toml").write_text(rules)
    spam = message_files(spamassassin_dir / "spam-1")[:10]
    ham = message_files(spamassassin_dir / "easy-ham-1")[:5]
    # the same five ham messages sit in jane's INBOX and in bob's Junk: shared blobs
    assert (
        vaultctl_run(
            home, "import", str(make_maildir(tmp_path / "junk", spam + ham)), "--mailbox", "user/bob/Junk"
        ).code
        == 0
    )
    assert (
        vaultctl_run(
            home, "import", str(make_maildir(tmp_path / "inbox", ham)), "--mailbox", "user/jane/INBOX"
        ).code
        == 0
    )
    return home


def _sweep(home, now, *extra):
    r = vaultctl_run(home, "retention", "sweep", "--now", now, "--json", *(extra or ("--yes",)))
    assert r.code == 0, r
    return json.loads(r.out)


def _present(home, mailbox, tmp_path):
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    r = vaultctl_run(home, "restore", "--mailbox", mailbox, "--to", f"maildir:{out}", "--json")
    return json.loads(r.out)


def test_dry_run_changes_nothing_and_a_hold_wins(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir, JUNK_RULE)
    later = "2003-01-01T00:00Z"  # the corpus is from 2002: everything is past 30 days
    size = json.loads(vaultctl_run(home, "status", "--json").out)["ledger_entries"]
    dry = _sweep(home, later, "--dry-run")
    assert len(dry["purge"]) == 15
    assert json.loads(vaultctl_run(home, "status", "--json").out)["ledger_entries"] == size

    assert (
        vaultctl_run(
            home,
            "hold",
            "create",
            "case-1",
            "--custodian",
            "bob",
            "--reason",
            "litigation",
            "--actor",
            "counsel",
        ).code
        == 0
    )
    held = _sweep(home, later)
    assert held["purge"] == [] and len(held["held"]) == 15
    assert all(h["holds"] == ["case-1"] for h in held["held"])
    assert vaultctl_run(home, "verify", "--read-data").code == 0

    release(home, "case-1", "--actor", "counsel")  # root for counsel; ann approves
    purged = _sweep(home, later)
    assert len(purged["purge"]) == 15
    # the five ham blobs are still referenced by jane's INBOX: only the ten spam blobs go
    assert purged["blobs_deleted"] == 10
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    assert _present(home, "user/jane/INBOX", tmp_path)["restored"] == 5
    junk = _present(home, "user/bob/Junk", tmp_path)
    assert junk["restored"] == 0 and len(junk["purged"]) == 15
    audit = json.loads(vaultctl_run(home, "log", "--mailbox", "user/bob/Junk", "--json").out)
    assert sum(e["kind"] == "retention.purged" for e in audit) == 15
    holds = json.loads(vaultctl_run(home, "hold", "list", "--all", "--json").out)
    # placed by root for counsel (--actor): the admin is the owner, both are recorded
    [placed] = ledger_entries(home, "hold.placed")
    assert placed.actor == "root" and placed.data["on_behalf_of"] == "counsel"
    assert holds[0]["owner"] == "root" and holds[0]["released_by"] == SECOND_ADMIN
    assert holds[0]["requested_by"] == "root"
    [asked] = ledger_entries(home, "hold.release_requested")
    assert asked.actor == "root" and asked.data["on_behalf_of"] == "counsel"


def test_longest_retention_wins_and_explain_says_why(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir, JUNK_RULE + KEEP_INBOX)
    early = _sweep(home, "2002-12-01T00:00Z", "--dry-run")
    assert {p["mailbox"] for p in early["purge"]} == {"user/bob/Junk"}
    item = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)[1]["item"]
    text = vaultctl_run(home, "retention", "explain", item, "--now", "2002-12-01T00:00Z").out
    assert "inbox" in text and "kept until" in text


def test_erasure_refused_under_hold_then_certified(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir, "")
    vaultctl_run(home, "hold", "create", "m-7", "--custodian", "jane", "--reason", "audit")
    refused = vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR", "--yes")
    assert refused.code != 0 and "m-7" in refused.err
    assert _present(home, "user/jane/INBOX", tmp_path)["restored"] == 5
    release(home, "m-7")
    cert = erase(home, "--custodian", "jane")
    assert len(cert["items"]) == 5
    assert cert["blobs_deleted"] == 0  # bob's Junk still holds the same five messages
    assert _present(home, "user/jane/INBOX", tmp_path)["restored"] == 0
    assert _present(home, "user/bob/Junk", tmp_path)["restored"] == 15
    assert vaultctl_run(home, "verify", "--read-data").code == 0


def test_serve_catches_up_a_missed_sweep_once(tmp_path, spamassassin_dir):
    from datetime import datetime

    from vault.config import Config
    from vault.service.scheduler import RunLog

    home = _vault(tmp_path, spamassassin_dir, JUNK_RULE)
    first = vaultctl_run(home, "serve", "--once")
    assert first.code == 0 and "nothing missed" in first.out
    state = Config.load(home).path("policy", "scheduler_state_path")
    RunLog(state).set_covered("sweep", datetime(2026, 1, 1, tzinfo=UTC))  # down for months
    second = vaultctl_run(home, "serve", "--once")
    assert second.code == 0 and "sweep" in second.out
    log = json.loads(vaultctl_run(home, "log", "--mailbox", "user/bob/Junk", "--json").out)
    purges = [e for e in log if e["kind"] == "retention.purged"]
    assert len(purges) == 15 and {e["actor"] for e in purges} == {"vault-scheduler"}
    third = vaultctl_run(home, "serve", "--once")  # caught up: not run again
    assert "nothing missed" in third.out


GROUP_RULE = """
[[rule]]
name = "legal-team-short"
purge_after = "30d"
[rule.match]
groups = ["legal"]
"""


@pytest.mark.slapd
def test_rule_by_ldap_group_and_hold_by_login_with_a_directory(tmp_path, spamassassin_dir, slapd):
    from tests.servers.slapd import ADMIN_DN, ADMIN_PASSWORD, SUFFIX

    home = init_vault(
        tmp_path / "vault",
        **TWO_ADMINS,
        **{
            "ldap.url": slapd.url,
            "ldap.base_dn": SUFFIX,
            "ldap.bind_dn": ADMIN_DN,
            "ldap.bind_password": ADMIN_PASSWORD,
        },
    )
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "rules.toml").write_text(GROUP_RULE)
    for user in ("alice", "carol"):  # alice is in group legal, carol is not
        box = make_maildir(tmp_path / user, message_files(spamassassin_dir / "spam-1")[:3])
        assert vaultctl_run(home, "import", str(box), "--mailbox", f"user/{user}/INBOX").code == 0
    dry = _sweep(home, "2003-01-01T00:00Z", "--dry-run")
    assert {p["mailbox"] for p in dry["purge"]} == {"user/alice"}
    vaultctl_run(home, "hold", "create", "m", "--custodian", "alice", "--reason", "r", "--actor", "carol")
    held = _sweep(home, "2003-01-01T00:00Z", "--dry-run")
    assert held["purge"] == [] and len(held["held"]) == 3
    # ledger actors the directory knows are recorded by their stable id, others by name
    entries = json.loads(vaultctl_run(home, "audit", "--json").out)
    placed = [(e["actor"], e["data"]["on_behalf_of"]) for e in entries if e["kind"] == "hold.placed"]
    assert placed == [("root", slapd.entry_uuid(f"uid=carol,ou=people,{SUFFIX}"))]
    release(home, "m", "--actor", "nobody-known")  # requested by root for nobody-known, approved by ann
    [asked] = ledger_entries(home, "hold.release_requested")
    assert asked.data["on_behalf_of"] == "nobody-known"  # not in the directory: recorded by name
    assert [e.actor for e in ledger_entries(home, "hold.released")] == [SECOND_ADMIN]


def _subjects(spamassassin_dir):
    """Subject words of the ten spam messages in bob's Junk, read with the standard library."""
    import email
    import email.policy
    import re

    out = {}
    for path in message_files(spamassassin_dir / "spam-1")[:10]:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[path] = {w.lower() for w in re.findall(r"[^\W_]+", str(msg["subject"] or ""))}
    return out


def test_a_hold_with_a_query_keeps_only_what_matches(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir, JUNK_RULE)
    words = _subjects(spamassassin_dir)
    # a word in some spam subjects but not all
    word = next(
        w
        for s in words.values()
        for w in sorted(s)
        if len(w) > 3 and 0 < sum(w in t for t in words.values()) < len(words)
    )
    matching = sum(word in t for t in words.values())
    assert (
        vaultctl_run(
            home,
            "hold",
            "create",
            "case-q",
            "--custodian",
            "bob",
            "--query",
            f"subject:{word}",
            "--reason",
            "litigation",
        ).code
        == 0
    )
    swept = _sweep(home, "2003-01-01T00:00Z")
    assert len(swept["held"]) == matching
    assert len(swept["purge"]) == 15 - matching
    assert vaultctl_run(home, "verify", "--read-data").code == 0


def test_erase_by_query_is_refused_under_hold_then_erases_only_matches(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault", **TWO_ADMINS)
    spam = message_files(spamassassin_dir / "spam-1")[:10]
    assert (
        vaultctl_run(
            home, "import", str(make_maildir(tmp_path / "junk", spam)), "--mailbox", "user/bob/Junk"
        ).code
        == 0
    )
    words = _subjects(spamassassin_dir)
    word = next(
        w
        for s in words.values()
        for w in sorted(s)
        if len(w) > 3 and 0 < sum(w in t for t in words.values()) < len(words)
    )
    matching = sum(word in t for t in words.values())
    assert vaultctl_run(home, "hold", "create", "case-e", "--custodian", "bob", "--reason", "r").code == 0
    refused = vaultctl_run(home, "erase", "--query", f"subject:{word}", "--reason", "r", "--yes")
    assert refused.code != 0 and "case-e" in refused.err
    release(home, "case-e")
    cert = erase(home, "--query", f"subject:{word}")
    assert len(cert["items"]) == matching and cert["query"] == f"subject:{word}"
    left = json.loads(vaultctl_run(home, "search", "custodian:bob size:>0", "--json").out)
    assert left["total"] == 10 - matching
    gone = json.loads(vaultctl_run(home, "search", f"subject:{word}", "--json").out)
    assert gone["total"] == 0  # erased content leaves the index too


def test_queries_scoped_to_folders_hold_and_erase_those_copies_only(tmp_path, spamassassin_dir):
    home = _vault(tmp_path, spamassassin_dir, JUNK_RULE)
    # the five ham messages in bob's Junk are also in jane's INBOX: a hold on bob's mail for
    # 'in:INBOX' holds none of bob's copies (bob has no INBOX), whatever jane holds
    assert (
        vaultctl_run(
            home, "hold", "create", "case-i", "--custodian", "bob", "--query", "in:INBOX", "--reason", "r"
        ).code
        == 0
    )
    dry = _sweep(home, "2003-01-01T00:00Z", "--dry-run")
    assert dry["held"] == [] and len(dry["purge"]) == 15
    release(home, "case-i")

    cert = erase(home, "--query", "in:Junk")
    assert len(cert["items"]) == 15 and cert["blobs_deleted"] == 10  # the shared five stay for jane
    assert _present(home, "user/jane/INBOX", tmp_path)["restored"] == 5
    left = json.loads(vaultctl_run(home, "search", "size:>0", "--json").out)
    assert left["total"] == 5 and {c for h in left["hits"] for c in h["custodians"]} == {"jane"}


def test_erase_while_another_writer_holds_the_vault_says_what_to_do(tmp_path):
    from vault.archive import Vault
    from vault.config import Config

    home = init_vault(tmp_path / "vault")
    with Vault.open(Config.load(home), writer=True):  # as another command writing it would
        r = vaultctl_run(home, "erase", "approve", "er-23456789", "--yes")
    assert r.code != 0 and "no vault service answers" in r.err, r
