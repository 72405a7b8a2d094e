"""Hostile input (issue 14, item 6): every case ends in "caught" or "clear error, nothing lost".

Queries nested past any sense, times outside what a time can hold, restores before a folder
existed: each is one clear error line (no traceback), exit non-zero, and the vault verifies
and restores as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.core.helpers import (
    init_vault,
    ledger_entries,
    ledger_lines,
    make_maildir,
    read_maildir,
    read_only_view,
    sha,
)
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl, vaultctl_run
from vault.testing.serve import start_service


@pytest.fixture
def vault_with_mail(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:10]
    box = make_maildir(tmp_path / "Maildir", files)
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home, {sha(f.read_bytes()) for f in files}


def clear_error(result, *words: str) -> None:
    """Exit non-zero, one ``Error: ...`` line naming ``words``, no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err and "Error" in result.err, result
    for word in words:
        assert word in result.err, result


def intact(home, tmp_path, expected: set[str]) -> None:
    verify = vaultctl_run(home, "verify", "--read-data")
    assert verify.code == 0, verify
    out = tmp_path / f"check-{len(os.listdir(tmp_path))}"
    assert vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}").code == 0
    assert set(read_maildir(out)) == expected


@pytest.mark.parametrize(
    "query",
    ["(" * 3000 + "money" + ")" * 3000, "NOT " * 3000 + "money", "-" * 3000 + "money"],
    ids=["parentheses", "NOT", "minus"],
)
def test_a_query_nested_too_deep_is_refused(vault_with_mail, tmp_path, query):
    home, expected = vault_with_mail
    clear_error(vaultctl_run(home, "search", "--", query), "bad query", "more than 64 deep")
    clear_error(
        vaultctl_run(home, "search", "--export", str(tmp_path / "x"), "--", query), "more than 64 deep"
    )
    assert not (tmp_path / "x").exists()
    intact(home, tmp_path, expected)


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "99999-01-01T00:00Z"]
)
def test_out_of_range_times_are_clear_errors(vault_with_mail, tmp_path, when):
    home, expected = vault_with_mail
    out = tmp_path / "out"
    r = vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--at", when, "--to", f"maildir:{out}")
    clear_error(r, "--at")
    assert not out.exists()
    clear_error(vaultctl_run(home, "audit", "--since", when), when)
    clear_error(vaultctl_run(home, "retention", "sweep", "--dry-run", "--now", when), when)
    clear_error(vaultctl_run(home, "search", f"before:{when}"), "bad query")
    intact(home, tmp_path, expected)


def test_a_restore_before_the_folder_existed_says_so(vault_with_mail, tmp_path):
    home, expected = vault_with_mail
    out = tmp_path / "out"
    r = vaultctl_run(
        home, "restore", "--mailbox", "user/jane/INBOX", "--at", "2000-01-01T00:00Z", "--to", f"maildir:{out}"
    )
    clear_error(
        r, "user/jane/INBOX did not exist yet at 2000-01-01T00:00:00.000000Z", "the archive has it from"
    )
    assert not out.exists()
    intact(home, tmp_path, expected)


# ---------------------------------------------------------------- names that are not UTF-8

LATIN1_USER = b"j\xe9r\xf4me"  # a home directory named in Latin-1, as old systems made them


def fs(name: bytes) -> str:
    return os.fsdecode(name)


def test_non_utf8_names_are_archived_and_restored_with_their_bytes(tmp_path, spamassassin_dir):
    """A Maildir under a Latin-1 home, message files whose names hold bytes that are no UTF-8
    at all, and an .eml tree likewise: archived (this used to crash every run), keys stable
    across runs, names shown and given back with the same bytes, restored byte-identical."""
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "easy-ham-1")[:6]
    user = tmp_path / fs(LATIN1_USER)
    box = user / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    names = [b"%d.M1P1.h\xff\xfeost:2,S" % n for n in range(4)] + [b"4.caf\xe9:2,", b"5.\xc3\x28:2,F"]
    for name, f in zip(names, files):
        (box / "cur" / fs(name)).write_bytes(f.read_bytes())
    expected = {sha(f.read_bytes()) for f in files}

    mailbox = b"user/" + LATIN1_USER  # the INBOX: Cyrus's name
    run = vaultctl(home, "import", str(box), "--mailbox", "user/{parent}/INBOX", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["appended"] == 6
    again = json.loads(
        vaultctl(home, "import", str(box), "--mailbox", fs(mailbox), "--json", check=True).stdout
    )
    assert (again["appended"], again["unchanged"]) == (0, 6)  # the same keys, run after run

    # shown with the same bytes: raw on stdout, \udcNN escapes in JSON (json.loads gives them back)
    listed = vaultctl(home, "ls", text=False, check=True).stdout
    assert mailbox in listed
    (folder,) = json.loads(vaultctl(home, "ls", "--json", check=True).stdout)
    assert os.fsencode(folder["name"]) == mailbox
    # the ledger stays UTF-8 text, the names in it as escapes that read back as the same bytes
    segment = b"\n".join(ledger_lines(home / "ledger"))
    segment.decode("utf-8")
    assert b"\\udce9" in segment and b"\\udcff\\udcfe" in segment
    log = json.loads(vaultctl(home, "log", "--mailbox", fs(mailbox), "--json", check=True).stdout)
    keys = {os.fsencode(e["data"]["key"]) for e in log if e["kind"] == "message.appended"}
    assert keys == {n.split(b":")[0] for n in names}
    assert all(
        os.fsencode(e["data"]["origin"]) == b"maildir:" + os.fsencode(box)
        for e in log
        if "origin" in e["data"]
    )

    # restored by the name's bytes into a folder whose name is no UTF-8 either
    out = tmp_path / fs(b"restored-\xff")
    done = vaultctl(home, "restore", "--mailbox", fs(mailbox), "--to", f"maildir:{out}", text=False)
    assert done.returncode == 0, done.stderr
    assert set(read_maildir(out)) == expected
    assert os.fsencode(out.name) in os.listdir(os.fsencode(tmp_path))
    audit = json.loads(vaultctl(home, "audit", "--json", check=True).stdout)
    assert any(os.fsencode(e["data"].get("target", "")) == b"maildir:" + os.fsencode(out) for e in audit)

    # a rebuilt catalog (from the ledger alone) knows the names as before
    before = json.loads(vaultctl(home, "ls", "--json", check=True).stdout)
    assert vaultctl(home, "rebuild").returncode == 0
    assert json.loads(vaultctl(home, "ls", "--json", check=True).stdout) == before
    # search by folder and custodian, and an export that verifies offline
    found = json.loads(vaultctl(home, "search", fs(b"in:" + mailbox), "--json", check=True).stdout)
    assert found["total"] == 6 and {os.fsencode(f) for h in found["hits"] for f in h["folders"]} == {mailbox}
    custodian = json.loads(
        vaultctl(home, "search", "--custodian", fs(LATIN1_USER), "subject:*", "--json").stdout or "{}"
    )
    assert custodian.get("total", 6) == 6
    export = tmp_path / "export"
    assert vaultctl(home, "search", fs(b"custodian:" + LATIN1_USER), "--export", str(export)).returncode == 0
    check = vaultctl(home, "verify-export", str(export), "--key", str(home / "keys" / "ledger.ed25519.pub"))
    assert check.returncode == 0, check.stdout + check.stderr

    # a file gone from the source is an expunge under the same key
    (box / "cur" / fs(names[5])).unlink()
    third = json.loads(
        vaultctl(home, "import", str(box), "--mailbox", fs(mailbox), "--json", check=True).stdout
    )
    assert (third["expunged"], third["unchanged"]) == (1, 5)
    assert vaultctl(home, "verify", "--read-data").returncode == 0


def test_an_eml_tree_with_non_utf8_names_is_archived(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:3]
    tree = tmp_path / "emls"
    (tree / fs(b"Entw\xfcrfe")).mkdir(parents=True)
    for name, f in zip([b"a.eml", b"Entw\xfcrfe/\xff.eml", b"Entw\xfcrfe/b\xe9.eml"], files):
        (tree / fs(name)).write_bytes(f.read_bytes())
    run = json.loads(
        vaultctl(home, "import", str(tree), "--mailbox", "user/jane/Drafts", "--json", check=True).stdout
    )
    assert run["appended"] == 3 and not run["problems"]
    log = json.loads(vaultctl(home, "log", "--mailbox", "user/jane/Drafts", "--json", check=True).stdout)
    keys = {os.fsencode(e["data"]["key"]) for e in log if e["kind"] == "message.appended"}
    assert keys == {b"a.eml", b"Entw\xfcrfe/\xff.eml", b"Entw\xfcrfe/b\xe9.eml"}


# ---------------------------------------------------------------- links, FIFOs and devices


def _appended_blobs(home) -> set[str]:
    log = json.loads(vaultctl(home, "audit", "--json", check=True).stdout)  # imports are audited
    assert log
    entries = ledger_entries(home / "ledger")
    return {e["data"]["blob"].split(":")[1] for e in entries if e["kind"] == "message.appended"}


def test_links_fifos_and_devices_in_a_source_are_never_followed(tmp_path, spamassassin_dir):
    """As root, importing a user's Maildir: a link to /etc/shadow, a link to a message-like file
    outside the tree, a FIFO and a device are skipped and named; the run does not hang on the
    FIFO; nothing outside the tree is archived. --follow-symlinks follows only links that stay
    inside the source."""
    assert os.geteuid() == 0, (
        "the planted-link case is about root importing users' mail: run the tests as root"
    )
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:4]
    box = make_maildir(tmp_path / "home" / "mallory" / "Maildir", files[:3])
    secret = tmp_path / "root-only" / "secret.eml"  # mail-like: archived "as it is" if it were read
    secret.parent.mkdir()
    secret.write_bytes(files[3].read_bytes())
    os.symlink("/etc/shadow", box / "cur" / "1.shadow:2,S")
    os.symlink(secret, box / "cur" / "2.secret:2,S")
    os.symlink("../cur/" + next((box / "cur").glob("0.test*")).name, box / "new" / "3.inside")
    os.mkfifo(box / "new" / "4.fifo")
    os.mknod(box / "new" / "5.null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (box / "tmp" / "ignored").write_bytes(b"tmp/ is never read")

    run = vaultctl(home, "import", str(box), "--mailbox", "user/mallory/INBOX", "--json", timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["appended"] == 3
    reasons = {p["path"].rsplit("/", 1)[1]: p["reason"] for p in report["problems"]}
    assert "a symbolic link (to /etc/shadow): not followed" in reasons["1.shadow:2,S"]
    assert "not followed" in reasons["2.secret:2,S"] and "not followed" in reasons["3.inside"]
    assert reasons["4.fifo"] == "a FIFO, not a message: skipped"
    assert reasons["5.null"] == "a device, not a message: skipped"
    assert "1.shadow:2,S" in run.stderr  # the operator sees each one named
    outside = {sha(Path("/etc/shadow").read_bytes()), sha(secret.read_bytes())}
    assert _appended_blobs(home) == {sha(f.read_bytes()) for f in files[:3]}
    assert not _appended_blobs(home) & outside

    followed = vaultctl(
        home, "import", str(box), "--mailbox", "user/mallory/INBOX", "--follow-symlinks", "--json"
    )
    report = json.loads(followed.stdout)
    assert report["appended"] == 1  # 3.inside: a link within the source, read as its target
    reasons = {p["path"].rsplit("/", 1)[1]: p["reason"] for p in report["problems"]}
    assert "outside the source: not followed" in reasons["1.shadow:2,S"]
    assert "outside the source: not followed" in reasons["2.secret:2,S"]
    assert not _appended_blobs(home) & outside
    assert vaultctl(home, "verify", "--read-data").returncode == 0


def test_a_source_that_is_a_link_is_followed_only_when_asked(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    real = make_maildir(tmp_path / "root" / "Maildir", message_files(spamassassin_dir / "spam-1")[:2])
    (tmp_path / "mallory").mkdir()
    link = tmp_path / "mallory" / "Maildir"
    os.symlink(real, link)
    r = vaultctl(home, "import", str(link), "--mailbox", "user/{parent}/INBOX")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{link}: a symbolic link (to {real}): not followed" in r.stderr
    assert json.loads(vaultctl(home, "status", "--json").stdout)["ledger_entries"] == 0
    ok = vaultctl(
        home, "import", str(link), "--mailbox", "user/{parent}/INBOX", "--follow-symlinks", "--json"
    )
    assert json.loads(ok.stdout)["appended"] == 2
    # {parent} is the name given, not the link's target's
    assert [f["name"] for f in json.loads(vaultctl(home, "ls", "--json").stdout)] == ["user/mallory"]


def test_links_to_directories_and_cyrus_metadata_are_not_followed(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:3]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.eml").write_bytes(files[2].read_bytes())
    emls = tmp_path / "emls"
    (emls / "sub").mkdir(parents=True)
    (emls / "a.eml").write_bytes(files[0].read_bytes())
    (emls / "sub" / "b.eml").write_bytes(files[1].read_bytes())
    os.symlink(elsewhere, emls / "out")
    os.symlink(emls / "sub", emls / "again")
    report = json.loads(
        vaultctl(home, "import", str(emls), "--mailbox", "user/jane/E", "--json", check=True).stdout
    )
    assert report["appended"] == 2
    assert {p["path"].rsplit("/", 1)[1] for p in report["problems"]} == {"out", "again"}
    report = json.loads(
        vaultctl(
            home, "import", str(emls), "--mailbox", "user/jane/E", "--follow-symlinks", "--json", check=True
        ).stdout
    )
    # "again" leads to sub/, read already; "out" leaves the source
    assert report["appended"] == 0 and {p["path"].rsplit("/", 1)[1] for p in report["problems"]} == {
        "out",
        "again",
    }

    # a Maildir whose cur/ is a link elsewhere: reported, not read
    box = tmp_path / "box"
    (box / "new").mkdir(parents=True)
    os.symlink(elsewhere, box / "cur")
    report = json.loads(
        vaultctl(home, "import", str(box), "--mailbox", "user/jane/B", "--json", check=True).stdout
    )
    assert report["appended"] == 0 and report["problems"][0]["path"] == str(box / "cur")


def test_a_file_swapped_for_a_link_after_the_scan_is_not_read(tmp_path):
    """The race: the scan saw a regular file, the read finds a link in its place."""
    from vault.ingest.importers import open_source
    from vault.ingest.importers.base import SourceMessage

    box = tmp_path / "Maildir"
    for sub in ("cur", "new"):
        (box / sub).mkdir(parents=True)
    (box / "cur" / "1.x:2,").write_bytes(b"Subject: hi\n\nhello\n")
    (tmp_path / "secret").write_bytes(b"Subject: secret\n\nroot only\n")
    (found,) = open_source(box).scan()
    assert isinstance(found, SourceMessage)
    (box / "cur" / "1.x:2,").unlink()
    os.symlink(tmp_path / "secret", box / "cur" / "1.x:2,")
    with pytest.raises(OSError, match="symbolic link"):
        found.read()
    os.rename(box / "cur", box / "cur.real")  # a directory on the way swapped for a link
    os.symlink(tmp_path, box / "cur")
    with pytest.raises(OSError, match="symbolic link"):
        found.read()


def test_a_cyrus_folder_with_linked_metadata_is_read_from_its_files(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    folder = tmp_path / "spool" / "uuid" / "f" / "n" / "fngchpsey72ifuhlby002uup"
    folder.mkdir(parents=True)
    files = message_files(spamassassin_dir / "spam-1")[:2]
    for uid, f in enumerate(files, 1):
        (folder / f"{uid}.").write_bytes(f.read_bytes())
    os.symlink("/etc/shadow", folder / "cyrus.index")
    os.symlink("/etc/shadow", folder / "cyrus.header")
    os.symlink(files[0], folder / "3.")
    r = vaultctl(home, "import", str(folder), "--mailbox", "user/jane/Cyrus", "--json", check=True)
    report = json.loads(r.stdout)
    assert report["appended"] == 2 and report["kind"] == "cyrus"
    reasons = {p["path"].rsplit("/", 1)[1]: p["reason"] for p in report["problems"]}
    assert "not followed" in reasons["cyrus.header"] and "not followed" in reasons["3."]
    assert any("cyrus.index" in p["path"] and "not followed" in p["reason"] for p in report["problems"])
    assert any("UIDs from file names" in p["reason"] for p in report["problems"])


# ---------------------------------------------------------------- a full disk


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A tmpfs of ``size`` mounted at ``where`` for the test (tests run as root)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)])
    assert mounted.returncode == 0, "mounting a tmpfs needs root: run the tests as root"
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)]).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def grow(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


@pytest.mark.parametrize(
    "part,size",
    [("home", "3m"), ("ledger", "160k"), ("catalog", "400k"), ("index", "1m"), ("blobs", "1m")],
)
def test_a_disk_that_fills_during_import_is_one_clear_error_and_the_next_run_completes(
    tmp_path, spamassassin_dir, part, size
):
    """The file system under the home, or under one of its parts, fills up half-way through an
    import: one line saying so, exit 1, no traceback; what was committed verifies and stays;
    once space is freed the same import completes, nothing lost and nothing twice."""
    files = [f for d in ("spam-1", "easy-ham-1", "hard-ham-1") for f in message_files(spamassassin_dir / d)][
        :1200
    ]
    box = make_maildir(tmp_path / "Maildir", files)
    disk = tmp_path / "small"
    with tmpfs(disk, size):
        settings: dict = {"import.batch_messages": 200, "import.index_commit_docs": 200}
        home = disk / "vault" if part == "home" else tmp_path / "vault"
        if part != "home":
            key = {
                "ledger": "ledger.path",
                "catalog": "catalog.path",
                "index": "index.path",
                "blobs": "store.path",
            }
            settings[key[part]] = str(disk / part)
        init_vault(home, **settings)
        first = vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX")
        assert first.returncode == 1, first.stdout + first.stderr
        assert "Traceback" not in first.stderr
        (line,) = [ln for ln in first.stderr.splitlines() if ln.strip()]
        assert line.startswith("Error: disk full") and "nothing committed was lost" in line, line
        named = {
            "ledger": "the ledger (",
            "catalog": "the catalog (",
            "index": "search index",
            "blobs": "blob store",
        }
        assert named.get(part, "") in line, line  # which part of the home was being written
        # what was committed holds, on the full disk
        verify = vaultctl(home, "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        committed = json.loads(vaultctl(home, "status", "--json", check=True).stdout)
        assert committed["ledger_entries"] < 1202

        grow(disk, "64m")
        second = vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
        assert second.returncode == 0, second.stderr
        report = json.loads(second.stdout)
        assert report["appended"] + report["unchanged"] == 1200 and report["expunged"] == 0
        ledger = disk / "ledger" if part == "ledger" else home / "ledger"
        entries = ledger_entries(ledger)
        appended = [e["data"]["key"] for e in entries if e["kind"] == "message.appended"]
        assert len(appended) == len(set(appended)) == 1200  # nothing twice, nothing missing
        assert vaultctl(home, "verify", "--read-data").returncode == 0
        out = tmp_path / "restored"
        assert (
            vaultctl(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}").returncode
            == 0
        )
        assert set(read_maildir(out)) == {sha(f.read_bytes()) for f in files}
        found = json.loads(vaultctl(home, "search", "subject:the", "--json", check=True).stdout)
        assert found["total"] > 0  # the index caught up too


# ---------------------------------------------------------------- a read-only home


def test_a_read_only_home_is_read_without_writing_and_audited_reads_need_the_service(
    tmp_path, spamassassin_dir
):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "easy-ham-1")[:40]
    box = make_maildir(tmp_path / "Maildir", files[:30])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    # a catalog left behind the ledger (a crash, a snapshot taken mid-commit): readers of the
    # read-only home catch it up in memory
    behind = (home / "catalog.sqlite").read_bytes()
    other = make_maildir(tmp_path / "Other", files[30:])
    assert vaultctl_run(home, "import", str(other), "--mailbox", "user/jane/Other").code == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{home / 'catalog.sqlite'}{suffix}").unlink(missing_ok=True)
    (home / "catalog.sqlite").write_bytes(behind)
    expected = {sha(f.read_bytes()) for f in files[:30]}

    with read_only_view(home, tmp_path / "ro") as ro:
        with pytest.raises(OSError):
            (ro / "probe").write_bytes(b"")  # it is read-only
        verify = vaultctl(ro, "verify", "--read-data")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        folders = json.loads(vaultctl(ro, "ls", "--json", check=True).stdout)
        assert {f["name"]: f["messages"] for f in folders} == {"user/jane": 30, "user/jane/Other": 10}
        log = json.loads(vaultctl(ro, "log", "--mailbox", "user/jane/Other", "--json", check=True).stdout)
        assert [e["kind"] for e in log].count("message.appended") == 10
        assert json.loads(vaultctl(ro, "status", "--json", check=True).stdout)["items_present"] == 40
        assert vaultctl(ro, "audit", check=True).stdout.count("import.run") == 2
        assert vaultctl(ro, "retention", "sweep", "--dry-run").returncode == 0
        assert (
            "nothing in the imported mail logs" in vaultctl(ro, "trace", "--user", "jane@example.org").stderr
        )

        # what must be audited is refused, before anything is written, with no service to record it
        out, export = tmp_path / "restored", tmp_path / "export"
        for args in (
            ("search", "subject:the"),
            ("restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}"),
            ("search", "subject:the", "--export", str(export)),
        ):
            r = vaultctl(ro, *args)
            assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
            assert "is read-only: the audit entry cannot be recorded here" in r.stderr, r.stderr
        assert not out.exists() and not export.exists()
        # and what writes says why it cannot
        for writes in (["import", str(box), "--mailbox", "user/jane/INBOX"], ["rebuild"]):
            r = vaultctl(ro, *writes)
            assert r.returncode == 1 and "Traceback" not in r.stderr and "cannot be written here" in r.stderr

        # with the service running on the writable home, they work from the read-only one
        with start_service(home):
            done = vaultctl(ro, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["audit"] == "recorded"
            assert set(read_maildir(out)) == expected
            found = json.loads(vaultctl(ro, "search", "subject:the", "--json", check=True).stdout)
            assert found["total"] > 0
            made = vaultctl(ro, "search", "custodian:jane", "--export", str(export), "--json")
            assert made.returncode == 0, made.stderr
            key = ro / "keys" / "ledger.ed25519.pub"
            assert vaultctl(ro, "verify-export", str(export), "--key", str(key)).returncode == 0
    kinds = [e["kind"] for e in json.loads(vaultctl(home, "audit", "--json", check=True).stdout)]
    assert {"restore.done", "search.run", "export.made"} <= set(kinds)
    assert vaultctl(home, "verify", "--read-data").returncode == 0


def test_a_directory_swapped_for_a_link_between_reads_is_not_followed(tmp_path):
    """Reads keep the directories they opened: a link put in a directory's place after its
    first file was read leads nowhere, the next file is read from the directory the scan saw."""
    from vault.ingest.importers import open_source
    from vault.ingest.importers.base import SourceMessage

    box = tmp_path / "Maildir"
    for sub in ("cur", "new"):
        (box / sub).mkdir(parents=True)
    for name in ("1.x:2,", "2.x:2,"):
        (box / "cur" / name).write_bytes(b"Subject: " + name.encode() + b"\n\nhello\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "2.x:2,").write_bytes(b"Subject: secret\n\nroot only\n")
    source = open_source(box)
    first, second = source.scan()
    assert isinstance(first, SourceMessage) and isinstance(second, SourceMessage)
    assert first.read().startswith(b"Subject: 1.x")
    os.rename(box / "cur", tmp_path / "moved")
    os.symlink(elsewhere, box / "cur")
    assert second.read().startswith(b"Subject: 2.x")
    source.tree.close()  # a read after close opens the path again, and refuses the link
    with pytest.raises(OSError, match="symbolic link"):
        second.read()
