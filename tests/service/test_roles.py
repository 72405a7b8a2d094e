"""Roles through the vault service, as OS users run vaultctl: a user restores, lists and reads
the changelog of their own folders only; a reviewer exports their matter's custodians' mail
within its date range (internal dates) and nothing else; an auditor lists holds but reads no
mail; SIGHUP makes a new [roles] entry effective; and with no service, the OS user who opened
the home is the caller (--actor is an admin's only). Restores and exports are streamed to the
caller's vaultctl, which writes them as the caller."""

from __future__ import annotations

import email
import json
import os
import pwd
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.core.helpers import write_maildir
from tests.service.test_service import (
    ADMIN2,
    AUDITOR,
    REVIEWER,
    audit_entries,
    os_user,
    service,  # noqa: F401  (the fixture)
    vaultctl,
)
from vault.restore.export_check import check_export

USER = "vaulttest-uma"
NEWCOMER = "vaulttest-rex"


def message(n: int, to: str, subject: str, date: str = "Mon, 2 Feb 2026 10:00:00 +0000") -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: {to}@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <roles{n}@example.org>\r\nDate: {date}\r\n\r\nbody {n}\r\n"
    ).encode()


def import_box(home: Path, where: Path, mailbox: str, messages: dict[str, tuple[bytes, datetime]]) -> None:
    """Import a Maildir of ``messages`` (file name -> bytes, internal date) as the admin."""
    box = write_maildir(where, {name: data for name, (data, _) in messages.items()})
    for name, (_, when) in messages.items():
        os.utime(box / "cur" / name, (when.timestamp(), when.timestamp()))
    done = vaultctl(home, "import", str(box), "--mailbox", mailbox)
    assert done.returncode == 0, done.stderr


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, 0, tzinfo=UTC)


@pytest.fixture
def out_dir():
    """A directory other users can reach (tmp_path is root's alone), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="vault-roles-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def owned_by(user: str, parent: Path, name: str) -> Path:
    """A fresh directory ``parent/name`` that ``user`` owns (where their vaultctl writes)."""
    path = parent / name
    path.mkdir(mode=0o700)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def item_of(home: Path, mailbox: str) -> str:
    """The item id of the first message archived in ``mailbox`` (asked as the admin)."""
    log = json.loads(vaultctl(home, "log", "-m", mailbox, "--json").stdout)
    return next(e["item"] for e in log if e["kind"] == "message.appended")


def refusals(home: Path, who: str) -> list[dict]:
    return [e for e in audit_entries(home) if e["kind"] == "access.refused" and e["actor"] == who]


def test_a_user_restores_their_own_folder_and_is_refused_anothers(service, tmp_path, out_dir):  # noqa: F811
    home, sock, _ = service
    uma = os_user(USER)
    env = {"VAULT_SOCKET": str(sock)}
    own = {f"{n}:2,S": (message(n, uma, f"mine {n}"), day(2026, 1, n + 1)) for n in range(1, 4)}
    import_box(home, tmp_path / "uma", f"user/{uma}/INBOX", own)
    import_box(
        home, tmp_path / "jane", "user/jane/INBOX", {"9:2,": (message(9, "jane", "hers"), day(2026, 1, 9))}
    )
    mine = owned_by(uma, out_dir, "mine")

    done = vaultctl(
        home,
        "restore",
        "-m",
        f"user/{uma}/INBOX",
        "--to",
        f"maildir:{mine}/INBOX",
        "--json",
        user=uma,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["restored"] == 3 and report["audit"] == "recorded"
    files = sorted((mine / "INBOX" / "cur").iterdir())
    assert sorted(f.read_bytes() for f in files) == sorted(data for data, _ in own.values())
    assert all(f.stat().st_uid == pwd.getpwnam(uma).pw_uid for f in files)  # written by the caller
    assert all(f.name.endswith(":2,S") for f in files)  # flags as archived
    assert sorted(int(f.stat().st_mtime) for f in files) == sorted(
        int(w.timestamp()) for _, w in own.values()
    )
    one = vaultctl(
        home,
        "restore",
        "-m",
        f"user/{uma}/INBOX",
        "--uid",
        "2",
        "--to",
        f"mbox:{mine}/one.mbox",
        user=uma,
        env=env,
    )
    assert one.returncode == 0, one.stderr
    assert (
        email.message_from_bytes((mine / "one.mbox").read_bytes().split(b"\n", 1)[1])["Subject"] == "mine 2"
    )

    theirs = vaultctl(
        home, "restore", "-m", "user/jane/INBOX", "--to", f"maildir:{mine}/jane", user=uma, env=env
    )
    assert theirs.returncode != 0
    assert f"{uma} may not restore user/jane/INBOX" in theirs.stderr
    assert not (mine / "jane").exists()
    typo = vaultctl(home, "restore", "-m", f"user/{uma}/Nope", "--to", f"maildir:{mine}/x", user=uma, env=env)
    assert typo.returncode != 0 and "user/jane" not in typo.stderr  # no other user's folder names

    entries = audit_entries(home)
    restores = [e for e in entries if e["kind"] == "restore.done" and e["actor"] == uma]
    assert [(e["data"]["mailbox"], e["data"]["restored"]) for e in restores] == [
        (f"user/{uma}/INBOX", 3),
        (f"user/{uma}/INBOX", 1),
    ]
    assert restores[0]["data"]["target"] == f"maildir:{mine}/INBOX"
    assert [e["data"]["operation"] for e in refusals(home, uma)] == ["restore"]


def test_a_user_lists_and_reads_the_changelog_of_their_own_folders_only(service, tmp_path):  # noqa: F811
    home, sock, _ = service
    uma = os_user(USER)
    env = {"VAULT_SOCKET": str(sock)}
    import_box(home, tmp_path / "a", f"user/{uma}/INBOX", {"1:2,": (message(1, uma, "a"), day(2026, 1, 1))})
    import_box(home, tmp_path / "b", f"user/{uma}/Sent", {"2:2,": (message(2, uma, "b"), day(2026, 1, 2))})
    import_box(home, tmp_path / "c", "user/jane/INBOX", {"3:2,": (message(3, "jane", "c"), day(2026, 1, 3))})

    listed = vaultctl(home, "ls", "--json", user=uma, env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(f["name"] for f in json.loads(listed.stdout)) == [f"user/{uma}", f"user/{uma}/Sent"]
    everything = json.loads(vaultctl(home, "ls", "--json").stdout)  # the admin sees all
    assert len(everything) == 3

    log = vaultctl(home, "log", "-m", f"user/{uma}/INBOX", "--json", user=uma, env=env)
    assert log.returncode == 0, log.stderr
    kinds = [e["kind"] for e in json.loads(log.stdout)]
    assert "folder.created" in kinds and "message.appended" in kinds
    text = vaultctl(home, "log", "-m", f"user/{uma}/INBOX", user=uma, env=env)
    assert text.returncode == 0 and "message.appended" in text.stdout

    jane_log = vaultctl(home, "log", "-m", "user/jane/INBOX", user=uma, env=env)
    assert jane_log.returncode != 0 and "may not read the changelog of user/jane/INBOX" in jane_log.stderr
    jane_item = next(f for f in everything if f["name"] == "user/jane")
    item = item_of(home, "user/jane/INBOX")
    assert item.startswith(jane_item["mailbox_id"])
    by_item = vaultctl(home, "log", "--item", item, user=uma, env=env)
    assert by_item.returncode != 0 and "is not theirs" in by_item.stderr
    explained = vaultctl(home, "retention", "explain", item, user=uma, env=env)
    assert explained.returncode != 0 and "is not theirs" in explained.stderr
    assert [e["data"]["operation"] for e in refusals(home, uma)] == ["log", "log", "retention.explain"]
    # reading folders and changelogs is not reading mail: no audit entry for it
    assert not [e for e in audit_entries(home) if e["actor"] == uma and e["kind"] != "access.refused"]


def test_a_reviewer_exports_only_their_matters_custodians_within_its_dates(service, tmp_path, out_dir):  # noqa: F811
    home, sock, _ = service
    rita = os_user(REVIEWER)
    env = {"VAULT_SOCKET": str(sock)}
    # internal dates decide, not the Date header: 2 is dated (header) inside the range but was
    # received outside it, 3 the other way round
    jane = {
        "1:2,": (message(1, "jane", "budget early", "Mon, 2 Feb 2026 10:00:00 +0000"), day(2026, 2, 2)),
        "2:2,": (message(2, "jane", "budget late", "Mon, 2 Feb 2026 10:00:00 +0000"), day(2026, 9, 1)),
        "3:2,": (message(3, "jane", "budget backdated", "Fri, 1 Jan 2021 10:00:00 +0000"), day(2026, 3, 3)),
        "4:2,": (message(4, "jane", "budget old", "Fri, 1 Jan 2021 10:00:00 +0000"), day(2021, 1, 1)),
    }
    import_box(home, tmp_path / "jane", "user/jane/INBOX", jane)
    bob = {"5:2,": (message(5, "bob", "budget bob", "Mon, 2 Feb 2026 10:00:00 +0000"), day(2026, 2, 2))}
    import_box(home, tmp_path / "bob", "user/bob/INBOX", bob)
    placed = vaultctl(
        home, "hold", "create", "case-9", "--custodian", "jane", "--from", "2026-01-01", "--to", "2026-06-30",
        "--reviewer", rita, "--reason", "audit",
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr

    found = vaultctl(home, "search", "budget", "--json", user=rita, env=env)
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert sorted(h["subject"] for h in result["hits"]) == ["budget backdated", "budget early"]
    assert result["total"] == 2
    # a query that tries to step out of the confinement (the service ANDs it with the matter's
    # custodians) still gets only what the matter covers: every hit is checked item by item
    escape = vaultctl(home, "search", "budget) OR (budget", "--json", user=rita, env=env)
    assert escape.returncode == 0, escape.stderr
    assert sorted(h["subject"] for h in json.loads(escape.stdout)["hits"]) == [
        "budget backdated",
        "budget early",
    ]

    export = owned_by(rita, out_dir, "rita")
    done = vaultctl(
        home, "search", "budget", "--export", str(export / "case-9"), "--json", user=rita, env=env
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["items"] == 2 and report["audit"] == "recorded"
    manifest = json.loads((export / "case-9" / "manifest.json").read_bytes())
    assert sorted(i["subject"] for i in manifest["items"]) == ["budget backdated", "budget early"]
    assert {tuple(i["custodians"]) for i in manifest["items"]} == {("jane",)}
    assert manifest["actor"] == rita
    files = [p for p in (export / "case-9").rglob("*") if p.is_file()]
    assert files and all(p.stat().st_uid == pwd.getpwnam(rita).pw_uid for p in files)
    key = (home / "keys" / "ledger.ed25519.pub").read_text()
    assert check_export(export / "case-9", key) == []  # offline: manifests, proofs, signed checkpoint
    assert not list(home.glob(".export-*"))  # the service's working copy is gone

    again = vaultctl(home, "search", "budget", "--export", str(export / "case-9"), user=rita, env=env)
    assert again.returncode != 0 and "not empty" in again.stderr
    bobs = vaultctl(
        home, "search", "budget", "--custodian", "bob", "--export", str(export / "b"), user=rita, env=env
    )
    assert bobs.returncode != 0 and "outside their matters' custodians and date ranges (jane)" in bobs.stderr
    restore = vaultctl(
        home, "restore", "-m", "user/jane/INBOX", "--to", f"maildir:{export}/r", user=rita, env=env
    )
    assert restore.returncode != 0 and "reviewers export within their matters" in restore.stderr
    listed = vaultctl(home, "ls", "--json", user=rita, env=env)
    assert [f["name"] for f in json.loads(listed.stdout)] == ["user/jane"]
    log = json.loads(vaultctl(home, "log", "-m", "user/jane/INBOX", "--json", user=rita, env=env).stdout)
    subjects = {e["item"] for e in log if e["kind"] == "message.appended"}
    assert len(subjects) == 2  # the changelog of the items within the matter's dates

    entries = audit_entries(home)
    exports = [e for e in entries if e["kind"] == "export.made" and e["actor"] == rita]
    assert [(e["data"]["items"], e["data"]["scope"], e["data"]["path"]) for e in exports] == [
        (2, ["jane"], str(export / "case-9"))
    ]
    assert sorted(e["data"]["operation"] for e in refusals(home, rita)) == ["export", "restore"]


def test_a_reviewer_places_holds_only_within_their_matters(service, tmp_path):  # noqa: F811
    home, sock, _ = service
    rita, uma = os_user(REVIEWER), os_user(USER)
    env = {"VAULT_SOCKET": str(sock)}
    import_box(home, tmp_path / "j", "user/jane/INBOX", {"1:2,": (message(1, "jane", "x"), day(2026, 2, 1))})
    import_box(home, tmp_path / "k", "user/kim/INBOX", {"1:2,": (message(2, "kim", "y"), day(2026, 2, 2))})
    placed = vaultctl(
        home, "hold", "create", "case-9", "--custodian", "jane", "--custodian", "kim",
        "--from", "2026-01-01", "--to", "2026-06-30", "--reviewer", rita, "--reason", "audit",
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr

    def place(matter: str, *args: str, user: str = rita):
        return vaultctl(home, "hold", "create", matter, *args, "--reason", "narrower", user=user, env=env)

    inside = place(
        "case-9a", "--custodian", "jane", "--custodian", "kim", "--from", "2026-02-01", "--to", "2026-03-31"
    )
    assert inside.returncode == 0, inside.stderr
    whole = place("case-9b", "--custodian", "jane", "--from", "2026-01-01", "--to", "2026-06-30")
    assert whole.returncode == 0, whole.stderr  # the matter's own range is within it
    refused = {
        "bob": place("x1", "--custodian", "bob", "--from", "2026-02-01", "--to", "2026-03-01"),
        "jane and bob": place("x2", "--custodian", "jane", "--custodian", "bob", "--from", "2026-02-01", "--to", "2026-03-01"),
        "open range": place("x3", "--custodian", "jane"),
        "open end": place("x4", "--custodian", "jane", "--from", "2026-02-01"),
        "before": place("x5", "--custodian", "jane", "--from", "2025-12-01", "--to", "2026-03-01"),
        "after": place("x6", "--custodian", "jane", "--from", "2026-02-01", "--to", "2026-07-01"),
        "reviewer": place("x7", "--custodian", "jane", "--from", "2026-02-01", "--to", "2026-03-01", "--reviewer", rita),
        "user": place("x8", "--custodian", uma, "--from", "2026-02-01", "--to", "2026-03-01", user=uma),
    }  # fmt: skip
    for what, done in refused.items():
        assert done.returncode != 0, what
    assert "bob in that date range is outside their matters' custodians and date ranges (jane, kim)" in (
        refused["bob"].stderr
    )
    assert "bob in that date range" in refused["jane and bob"].stderr
    assert "jane in that date range" in refused["open range"].stderr
    assert "naming a hold's reviewers is an admin's" in refused["reviewer"].stderr
    assert "holds are placed by admins, and by reviewers within their matters" in refused["user"].stderr

    entries = audit_entries(home)
    held = [(e["data"]["matter"], e["actor"]) for e in entries if e["kind"] == "hold.placed"]
    assert held == [("case-9", "root"), ("case-9a", rita), ("case-9b", rita)]
    actions = [e["data"]["action"] for e in refusals(home, rita)]
    assert actions == [f"place hold 'x{n}'" for n in range(1, 8)]
    assert [e["data"]["action"] for e in refusals(home, uma)] == ["place hold 'x8'"]
    listed = vaultctl(home, "hold", "list", "--json", user=rita, env=env)
    assert listed.returncode == 0, listed.stderr
    assert [h["matter"] for h in json.loads(listed.stdout)] == ["case-9", "case-9a", "case-9b"]
    # the hold she placed preserves mail but lets nobody read it: after the matter is released
    # (two admins), her scope is gone with it
    asked = vaultctl(home, "hold", "release", "case-9", "--reason", "done", "--json")
    assert asked.returncode == 0, asked.stderr
    ann = os_user(ADMIN2)
    approved = vaultctl(home, "hold", "approve", json.loads(asked.stdout)["request"], user=ann, env=env)
    assert approved.returncode == 0, approved.stderr
    after = vaultctl(home, "search", "x", "--custodian", "jane", user=rita, env=env)
    assert after.returncode != 0 and "a reviewer of no active matter" in after.stderr
    again = place("x9", "--custodian", "jane", "--from", "2026-02-01", "--to", "2026-03-01")
    assert again.returncode != 0 and "a reviewer of no active matter" in again.stderr


def test_an_auditor_lists_holds_and_requests_but_cannot_restore(service, tmp_path, out_dir):  # noqa: F811
    home, sock, _ = service
    otto = os_user(AUDITOR)
    uma = os_user(USER)
    env = {"VAULT_SOCKET": str(sock)}
    import_box(home, tmp_path / "j", "user/jane/INBOX", {"1:2,": (message(1, "jane", "x"), day(2026, 1, 1))})
    import_box(home, tmp_path / "b", "user/bob/INBOX", {"2:2,": (message(2, "bob", "y"), day(2026, 1, 2))})
    assert vaultctl(home, "hold", "create", "case-3", "--custodian", "jane", "--reason", "r").returncode == 0
    asked = vaultctl(home, "erase", "--custodian", "bob", "--reason", "GDPR", "--json", "--yes")
    assert asked.returncode == 0, asked.stderr

    holds = vaultctl(home, "hold", "list", "--json", user=otto, env=env)
    assert holds.returncode == 0, holds.stderr
    assert [h["matter"] for h in json.loads(holds.stdout)] == ["case-3"]
    shown = vaultctl(home, "hold", "show", "case-3", user=otto, env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["custodians"] == ["jane"]
    pending = vaultctl(home, "erase", "requests", "--json", user=otto, env=env)
    assert pending.returncode == 0, pending.stderr
    assert [r["request"] for r in json.loads(pending.stdout)] == [json.loads(asked.stdout)["request"]]
    item = item_of(home, "user/jane/INBOX")
    explained = vaultctl(home, "retention", "explain", item, user=otto, env=env)
    assert explained.returncode == 0 and "case-3" in explained.stdout

    mine = owned_by(otto, out_dir, "otto")
    restore = vaultctl(
        home, "restore", "-m", "user/jane/INBOX", "--to", f"maildir:{mine}/j", user=otto, env=env
    )
    assert restore.returncode != 0 and "auditors see the audit trail, not mail" in restore.stderr
    ls = vaultctl(home, "ls", user=otto, env=env)
    assert ls.returncode != 0 and "auditors see the audit trail, not mail" in ls.stderr
    assert not (mine / "j").exists()
    # a user sees no holds nor requests (a hold can be confidential to its custodians)
    assert vaultctl(home, "hold", "list", user=uma, env=env).returncode != 0
    assert vaultctl(home, "erase", "requests", user=uma, env=env).returncode != 0
    assert sorted(e["data"]["operation"] for e in refusals(home, otto)) == ["ls", "restore"]
    assert sorted(e["data"]["operation"] for e in refusals(home, uma)) == ["hold.list", "requests"]


def test_sighup_rereads_the_roles_and_a_new_reviewer_is_effective(service, tmp_path):  # noqa: F811
    home, sock, served = service
    rex = os_user(NEWCOMER)
    env = {"VAULT_SOCKET": str(sock)}
    import_box(
        home, tmp_path / "j", "user/jane/INBOX", {"1:2,": (message(1, "jane", "memo"), day(2026, 1, 1))}
    )
    held = vaultctl(
        home, "hold", "create", "case-5", "--custodian", "jane", "--reviewer", rex, "--reason", "r"
    )
    assert held.returncode == 0, held.stderr
    before = vaultctl(home, "search", "memo", "--custodian", "jane", user=rex, env=env)
    assert before.returncode != 0 and "is not theirs" in before.stderr  # a plain user so far

    config = home / "config.toml"
    text = config.read_text()
    config.write_text(text.replace(f'reviewers = ["{REVIEWER}"]', f'reviewers = ["{REVIEWER}", "{rex}"]', 1))
    line = served.hup("roles reloaded")
    assert line is not None and rex in line

    after = vaultctl(home, "search", "memo", "--json", user=rex, env=env)
    assert after.returncode == 0, after.stderr
    assert [h["subject"] for h in json.loads(after.stdout)["hits"]] == ["memo"]
    assert served.proc.poll() is None  # still serving
    # a config that does not load leaves the roles as they were
    config.write_text(text + "\n[roles\n")
    served.hup("roles not reloaded")
    assert vaultctl(home, "search", "memo", "--json", user=rex, env=env).returncode == 0
    config.write_text(text)


def test_rebuild_is_refused_while_the_service_runs(service):  # noqa: F811
    home, _, _ = service
    done = vaultctl(home, "rebuild")
    assert done.returncode != 0 and "stop the vault service" in done.stderr


def test_without_the_service_the_os_user_is_the_caller_and_actor_is_an_admins(tmp_path):
    """A home whose [roles] make the user running vaultctl (root here, who can open any home)
    no admin, and which another user owns: --actor is refused and recorded, and its searches
    are their own mail's."""
    home = tmp_path / "home"
    assert vaultctl(home, "init").returncode == 0
    owner = os_user(ADMIN2)
    config = home / "config.toml"
    config.write_text(config.read_text().replace('admins = ["root"]', f'admins = ["{owner}"]', 1))
    import_box(
        home, tmp_path / "j", "user/jane/INBOX", {"1:2,": (message(1, "jane", "plan"), day(2026, 1, 1))}
    )
    entry = pwd.getpwnam(owner)
    for path in [home, *home.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    forged = vaultctl(
        home, "hold", "create", "case-1", "--custodian", "jane", "--reason", "x", "--actor", "legal"
    )
    assert forged.returncode != 0 and "root may not act for 'legal' (--actor)" in forged.stderr
    search = vaultctl(home, "search", "plan", "--custodian", "jane", "--actor", "legal")
    assert search.returncode != 0 and "root may not act for 'legal' (--actor)" in search.stderr
    jane = vaultctl(home, "search", "plan", "--custodian", "jane")
    assert jane.returncode != 0 and "root may not search jane's mail" in jane.stderr
    restore = vaultctl(home, "restore", "-m", "user/jane/INBOX", "--to", f"maildir:{tmp_path}/r")
    assert restore.returncode != 0 and "root may not restore user/jane/INBOX" in restore.stderr
    entries = [e for e in audit_entries(home) if e["kind"] == "access.refused"]
    assert [(e["actor"], e["data"]["action"]) for e in entries] == [
        ("root", "place hold 'case-1' for 'legal'"),
        ("root", "search mail for 'legal'"),
        ("root", "search jane's mail"),
        ("root", "restore user/jane/INBOX"),
    ]


def test_with_the_service_stopped_another_user_is_told_why(service):  # noqa: F811
    home, sock, served = service
    uma = os_user(USER)
    assert vaultctl(home, "ls", user=uma, env={"VAULT_SOCKET": str(sock)}).returncode == 0
    assert served.stop() == 0
    done = vaultctl(home, "ls", user=uma, env={"VAULT_SOCKET": str(sock)})
    assert done.returncode != 0
    assert (
        "permission denied: a vault home is its owner's alone, and no vault service answered" in done.stderr
    )


def test_a_restore_the_service_cannot_read_fails_for_the_caller(service, tmp_path, out_dir):  # noqa: F811
    home, sock, _ = service
    uma = os_user(USER)
    own = {f"{n}:2,": (message(n, uma, f"m {n}") + b"x" * 5000 * n, day(2026, 1, n)) for n in range(1, 4)}
    import_box(home, tmp_path / "u", f"user/{uma}/INBOX", own)
    packs = [
        p for p in (home / "blobs").rglob("*") if p.is_file() and "pack" in str(p.relative_to(home / "blobs"))
    ]
    for pack in packs:  # the messages' bytes are gone: the service's first read fails
        pack.unlink()
    mine = owned_by(uma, out_dir, "mine")
    done = vaultctl(
        home,
        "restore",
        "-m",
        f"user/{uma}/INBOX",
        "--to",
        f"maildir:{mine}/INBOX",
        user=uma,
        env={"VAULT_SOCKET": str(sock)},
    )
    assert done.returncode != 0 and "missing from local:" in done.stderr  # the store's reason
    assert not (mine / "INBOX").exists()  # nothing came: no target was made
