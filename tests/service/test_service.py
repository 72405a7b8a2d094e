"""The vault service: `vaultctl serve` owns the home; other vaultctl commands talk to it over its
unix socket, which tells it who they are (SO_PEERCRED). Tested as a user would: the real
`vaultctl serve` process, the real CLI, a second OS user made by the test."""

from __future__ import annotations

import importlib
import io
import json
import os
import pkgutil
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.core.helpers import write_maildir
from vault.testing.cli import vaultctl_argv
from vault.testing.serve import start_service

OTHER = "vaulttest-other"
REVIEWER = "vaulttest-rita"
AUDITOR = "vaulttest-otto"
ADMIN2 = "vaulttest-ann"


def mail(n: int, to: str, subject: str) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: {to}@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <svc{n}@example.org>\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    ).encode()


def vaultctl(home: Path, *args: str, user: str | None = None, env: dict | None = None):
    if user:
        return as_user(user, home, *args, env=env)
    argv = vaultctl_argv(*args, home=home)
    return subprocess.run(  # stdin not a terminal, as in a script: destructive commands need --yes
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _load_everything() -> None:
    """Every module of vault and the CLI, imported here, so a forked child needs no file of
    this checkout (which another user may not be able to read: a clone under /root)."""
    import vault
    import vaultctl

    for module in pkgutil.walk_packages(vault.__path__, "vault."):
        if not module.name.startswith("vault.testing"):
            importlib.import_module(module.name)
    vaultctl._commands()


def as_user(user: str, home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``vaultctl --home HOME ARGS`` in a child process running as OS user ``user`` (its uid is
    what the service's socket reports): forked from this process, so the code is already
    loaded, then setuid. Its exit code and output, as subprocess.run gives them."""
    import vaultctl

    _load_everything()
    entry = pwd.getpwnam(user)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.environ.update(env or {}, HOME="/", USER=user, LOGNAME=user)
            os.chdir("/")
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0, closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0, closefd=False), write_through=True)
            try:
                vaultctl.main(["--home", str(home), *args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # report, never fall back into pytest's code in the child
            os.write(2, f"child failed: {type(e).__name__}: {e}\n".encode())
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    argv = ["vaultctl", "--home", str(home), *args]
    return subprocess.CompletedProcess(
        argv, os.waitstatus_to_exitcode(status), stdout.decode(), stderr.decode()
    )


@pytest.fixture
def service():
    """A vault (socket outside the home, where other users reach it) and its running service
    (vault/testing/serve.py)."""
    sockets = Path(tempfile.mkdtemp(prefix="vault-svc-", dir="/tmp"))  # reachable by other users
    home = sockets / "home"  # 0700 in a directory others can search, as /var/lib/vault in /var/lib
    done = vaultctl(home, "init")
    assert done.returncode == 0, done.stderr
    text = (home / "config.toml").read_text()
    text = text.replace("reviewers = []", f'reviewers = ["{REVIEWER}"]', 1)
    text = text.replace("auditors = []", f'auditors = ["{AUDITOR}"]', 1)
    text = text.replace('admins = ["root"]', f'admins = ["root", "{ADMIN2}"]', 1)
    (home / "config.toml").write_text(text)
    try:
        with start_service(home, sockets=sockets) as served:
            yield home, served.socket, served
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def os_user(name: str) -> str:
    if not any(p.pw_name == name for p in pwd.getpwall()):
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    return name


@pytest.fixture
def other_user():
    return os_user(OTHER)


def audit_entries(home: Path) -> list[dict]:
    done = vaultctl(home, "audit", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_commands_go_through_the_service_which_holds_the_writer(service, tmp_path):
    home, sock, _ = service
    box = write_maildir(tmp_path / "md", {f"{n}:2,S": mail(n, "jane", f"invoice {n}") for n in range(3)})
    # the service holds the vault's writer: an import lands through it instead of being refused
    done = vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["appended"] == 3
    found = vaultctl(home, "search", "invoice", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["total"] == 3
    held = vaultctl(home, "hold", "create", "case-1", "--custodian", "jane", "--reason", "litigation")
    assert held.returncode == 0, held.stderr
    again = vaultctl(home, "hold", "create", "case-1", "--custodian", "jane", "--reason", "again")
    assert again.returncode != 0 and "exists and is active" in again.stderr
    kinds = [(e["kind"], e["actor"]) for e in audit_entries(home)]
    assert (
        ("import.run", "root") in kinds
        and ("search.run", "root") in kinds
        and ("hold.placed", "root") in kinds
    )


def test_the_home_is_its_owners_alone(service):
    home, _, _ = service
    for path in [home, *home.rglob("*")]:
        if path.is_symlink() or path.is_socket():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_another_user_cannot_read_the_home_and_is_refused_and_audited(service, other_user, tmp_path):
    home, sock, _ = service
    box = write_maildir(tmp_path / "md", {"1:2,": mail(1, "jane", "secret plans")})
    assert vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX").returncode == 0
    peek = subprocess.run(
        ["runuser", "-u", other_user, "--", "cat", str(home / "catalog.sqlite")], capture_output=True
    )
    assert peek.returncode != 0 and b"Permission denied" in peek.stderr
    env = {"VAULT_SOCKET": str(sock)}
    theirs = vaultctl(home, "search", "secret", "--custodian", "jane", user=other_user, env=env)
    assert theirs.returncode != 0
    assert f"{other_user} may not search jane's mail" in theirs.stderr
    forged = vaultctl(
        home,
        "hold",
        "release",
        "case-9",
        "--reason",
        "x",
        "--actor",
        "legal-office",
        user=other_user,
        env=env,
    )
    assert forged.returncode != 0 and "may not" in forged.stderr
    refusals = [e for e in audit_entries(home) if e["kind"] == "access.refused"]
    assert {(e["actor"], e["data"]["operation"]) for e in refusals} == {
        (other_user, "search"),
        (other_user, "hold.release"),
    }
    # their own mail (none here) is theirs to search: scoped, not refused
    own = vaultctl(home, "search", "secret", "--json", user=other_user, env=env)
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["total"] == 0
    searches = [e for e in audit_entries(home) if e["kind"] == "search.run" and e["actor"] == other_user]
    assert searches and searches[-1]["data"]["custodian"] == other_user


def test_the_service_stops_cleanly_and_commands_open_the_home_again(service, tmp_path):
    home, sock, served = service
    assert served.stop() == 0
    assert not sock.exists()
    box = write_maildir(tmp_path / "md", {"1:2,": mail(1, "bob", "after")})
    done = vaultctl(home, "import", str(box), "--mailbox", "user/bob/INBOX")
    assert done.returncode == 0, done.stderr
    shutil.rmtree(box)


def test_an_import_for_someone_else_records_the_admin_and_whom_it_was_for(service, other_user, tmp_path):
    """``import --actor``: through the service and with the home opened by vaultctl itself,
    the admin is the actor and the person acted for ``on_behalf_of``; a non-admin is refused."""
    home, sock, served = service
    box = write_maildir(tmp_path / "md", {"1:2,": mail(1, "jane", "old mail")})
    done = vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--actor", "legal-office")
    assert done.returncode == 0, done.stderr
    env = {"VAULT_SOCKET": str(sock)}
    theirs = write_maildir(tmp_path / "theirs", {"2:2,": mail(2, "jane", "forged")})
    forged = vaultctl(
        home,
        "import",
        str(theirs),
        "--mailbox",
        "user/jane/Other",
        "--actor",
        "jane",
        user=other_user,
        env=env,
    )
    assert forged.returncode != 0 and f"{other_user} may not act for 'jane' (--actor)" in forged.stderr
    assert served.stop() == 0
    box2 = write_maildir(tmp_path / "md2", {"3:2,": mail(3, "bob", "older mail")})
    done = vaultctl(home, "import", str(box2), "--mailbox", "user/bob/INBOX", "--actor", "records-team")
    assert done.returncode == 0, done.stderr  # no service: vaultctl opened the home itself

    entries = audit_entries(home)
    runs = [
        (e["actor"], e["data"]["mailbox"], e["data"].get("on_behalf_of"))
        for e in entries
        if e["kind"] == "import.run"
    ]
    assert runs == [("root", "user/jane", "legal-office"), ("root", "user/bob", "records-team")]
    refused = [(e["actor"], e["data"]["operation"]) for e in entries if e["kind"] == "access.refused"]
    assert refused == [(other_user, "import")]


def test_a_reviewer_sees_their_matters_custodians_and_nothing_else(service, tmp_path):
    home, sock, _ = service
    rita = os_user(REVIEWER)
    for n, who in enumerate(["jane", "jane", "bob"]):
        box = write_maildir(tmp_path / f"md{n}", {f"{n}:2,": mail(n, who, f"quarterly report {n}")})
        assert vaultctl(home, "import", str(box), "--mailbox", f"user/{who}/F{n}").returncode == 0
    env = {"VAULT_SOCKET": str(sock)}
    unassigned = vaultctl(home, "search", "quarterly", user=rita, env=env)
    assert unassigned.returncode != 0 and "a reviewer of no active matter" in unassigned.stderr
    placed = vaultctl(
        home, "hold", "create", "case-7", "--custodian", "jane", "--reviewer", rita, "--reason", "audit"
    )
    assert placed.returncode == 0, placed.stderr
    found = vaultctl(home, "search", "quarterly", "--json", user=rita, env=env)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert sorted(h["subject"] for h in hits) == ["quarterly report 0", "quarterly report 1"]
    assert all(h["custodians"] == ["jane"] for h in hits)
    bob = vaultctl(home, "search", "quarterly", "--custodian", "bob", user=rita, env=env)
    assert bob.returncode != 0 and "outside their matters' custodians (jane)" in bob.stderr
    entries = audit_entries(home)
    assert [e["data"]["scope"] for e in entries if e["kind"] == "search.run" and e["actor"] == rita] == [
        ["jane"]
    ]
    assert {
        e["data"]["operation"] for e in entries if e["kind"] == "access.refused" and e["actor"] == rita
    } == {"search"}


def test_an_auditor_reads_the_trail_and_verifies_but_reads_no_mail(service, tmp_path):
    home, sock, _ = service
    otto = os_user(AUDITOR)
    box = write_maildir(tmp_path / "md", {"1:2,": mail(1, "jane", "board minutes")})
    assert vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX").returncode == 0
    env = {"VAULT_SOCKET": str(sock)}
    trail = vaultctl(home, "audit", "--json", user=otto, env=env)
    assert trail.returncode == 0, trail.stderr
    assert [e["kind"] for e in json.loads(trail.stdout)] == ["import.run"]
    checked = vaultctl(home, "verify", user=otto, env=env)
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stderr
    health = vaultctl(home, "status", "--json", user=otto, env=env)
    assert "may not" not in health.stderr
    mail_ = vaultctl(home, "search", "minutes", user=otto, env=env)
    assert mail_.returncode != 0 and "auditors see the audit trail, not mail" in mail_.stderr


def test_an_erasure_takes_two_admins_through_the_service(service, tmp_path):
    home, sock, _ = service
    ann = os_user(ADMIN2)
    box = write_maildir(tmp_path / "md", {f"{n}:2,": mail(n, "erin", f"personal {n}") for n in range(2)})
    assert vaultctl(home, "import", str(box), "--mailbox", "user/erin/INBOX").returncode == 0
    dry = vaultctl(home, "erase", "--custodian", "erin", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)["items"]) == 2
    asked = vaultctl(home, "erase", "--custodian", "erin", "--reason", "GDPR art. 17", "--json", "--yes")
    assert asked.returncode == 0, asked.stderr
    rid = json.loads(asked.stdout)["request"]
    own = vaultctl(home, "erase", "approve", rid, "--yes")
    assert own.returncode != 0 and "their own request" in own.stderr
    assert json.loads(vaultctl(home, "search", "personal", "--json").stdout)["total"] == 2  # nothing erased
    env = {"VAULT_SOCKET": str(sock)}
    done = vaultctl(home, "erase", "approve", rid, "--json", "--yes", user=ann, env=env)
    assert done.returncode == 0, done.stderr
    cert = json.loads(done.stdout)
    assert cert["requested_by"] == "root" and len(cert["items"]) == 2 and cert["blobs_deleted"] == 2
    assert json.loads(vaultctl(home, "search", "personal", "--json").stdout)["total"] == 0
    kinds = [(e["kind"], e["actor"]) for e in audit_entries(home)]
    assert ("erasure.requested", "root") in kinds and ("erasure.certified", ann) in kinds
    assert ("access.refused", "root") in kinds  # the self-approval, recorded once
    assert kinds.count(("access.refused", "root")) == 1


def test_the_service_path_applies_the_direct_paths_guards(service, tmp_path):
    home, _, _ = service
    box = write_maildir(tmp_path / "md", {f"{n}:2,S": mail(n, "jane", f"invoice {n}") for n in range(2)})
    assert vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX").returncode == 0

    def hold(matter: str, *args: str):
        return vaultctl(home, "hold", "create", matter, "--reason", "litigation", *args)

    broken = hold("c-1", "--custodian", "jane", "--query", "subject:(invoice")
    assert broken.returncode == 1 and "does not parse" in broken.stderr and "--force" in broken.stderr
    unknown = hold("c-2", "--custodian", "jnae")
    assert unknown.returncode == 1 and "'jnae' unknown to the archive" in unknown.stderr
    assert json.loads(vaultctl(home, "hold", "list", "--json").stdout) == []
    assert hold("c-2", "--custodian", "jnae", "--force").returncode == 0

    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "all.toml").write_text('[[rule]]\nname = "all"\npurge_after = "1d"\nmatch = "all"\n')
    swept = vaultctl(home, "retention", "sweep", "--now", "2100-01-01T00:00Z")
    assert swept.returncode == 1 and "--yes" in swept.stderr and swept.stderr.count("rule all") == 2
    erase = vaultctl(home, "erase", "--custodian", "jane", "--reason", "GDPR")
    assert erase.returncode == 1 and "--yes" in erase.stderr and erase.stderr.count("  user/jane  ") == 2
    assert json.loads(vaultctl(home, "erase", "requests", "--json").stdout) == []
    assert json.loads(vaultctl(home, "search", "invoice", "--json").stdout)["total"] == 2  # nothing purged
    done = vaultctl(home, "retention", "sweep", "--now", "2100-01-01T00:00Z", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["purge"]) == 2
    listed = vaultctl(home, "ls").stdout
    assert "(2 purged by retention)" in listed
    restored = vaultctl(
        home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{tmp_path / 'out'}"
    )
    assert restored.returncode == 0 and restored.stderr.count("purged by retention rule all") == 2, restored
