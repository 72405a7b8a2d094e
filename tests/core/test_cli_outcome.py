"""How every vaultctl command ends (vault/cli/outcome.py): exit codes as restic's (0 ok, 1 fatal,
2 usage, 3 finished with unreadable items), --json on every command with errors as one JSON
object on stderr, and never a traceback, found by hand and by a fuzz of every command's
options."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.helpers import init_vault, write_maildir
from tests.service.test_service import OTHER, as_user, os_user
from vault.archive import Vault
from vault.cli.outcome import INTERNAL
from vault.config import Config
from vault.testing.cli import vaultctl, vaultctl_run
from vaultctl import cli

# the dealer's own entry point is notifyd's external notifier: notifyd's argv, no output
NO_JSON = {("dealer",)}


def mail(n: int) -> bytes:
    return (
        f"From: a{n}@example.org\nTo: jane@example.org\nSubject: memo {n}\n"
        f"Message-ID: <o{n}@example.org>\nDate: Tue, 3 Feb 2026 10:00:00 +0000\n\nmemo body {n}\n"
    ).encode()


def leaf_commands() -> dict[tuple[str, ...], click.Command]:
    """Every command a user can run, by its words (``("hold", "create")``)."""
    found: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                walk(sub, (*path, name))
            if not command.invoke_without_command:
                return
        found[path] = command

    for name in cli.list_commands(click.Context(cli)):
        walk(cli.get_command(click.Context(cli), name), (name,))
    return found


@pytest.fixture(scope="module")
def small_vault(tmp_path_factory):
    base = tmp_path_factory.mktemp("outcome")
    home = init_vault(base / "vault")
    box = write_maildir(base / "inbox", {f"{n}:2,S": mail(n) for n in range(3)})
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home


def test_every_command_has_json():
    missing = [
        " ".join(p)
        for p, c in leaf_commands().items()
        if p not in NO_JSON and "as_json" not in {x.name for x in c.params}
    ]
    assert missing == []
    assert len(leaf_commands()) > 40


def test_an_error_with_json_is_one_object_on_stderr_with_its_exit_code(small_vault):
    bad_query = vaultctl(small_vault, "search", "memo (", "--json")
    assert bad_query.returncode == 1 and bad_query.stdout == ""
    assert json.loads(bad_query.stderr) == {
        "error": "bad query: position 7: query ends where a term was expected",
        "exit_code": 1,
    }
    usage = vaultctl(small_vault, "ls", "--no-such-option", "--json")
    assert usage.returncode == 2
    error = json.loads(usage.stderr)
    assert error["usage"] is True and error["exit_code"] == 2 and "--no-such-option" in error["error"]
    plain = vaultctl(small_vault, "search", "memo (")
    assert plain.returncode == 1 and plain.stderr.startswith("Error: bad query")


def test_audit_since_a_bare_day_is_a_clear_error_not_a_traceback(small_vault):
    done = vaultctl(small_vault, "audit", "--since", "2026-12-01", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--since" in json.loads(done.stderr)["error"]
    fine = vaultctl(small_vault, "audit", "--since", "2026-12-01T00:00Z", "--json")
    assert fine.returncode == 0 and isinstance(json.loads(fine.stdout), list)


def test_an_export_to_a_path_that_cannot_be_made_is_one_line(small_vault, tmp_path):
    (tmp_path / "a-file").write_text("x")
    done = vaultctl(small_vault, "search", "memo", "--export", str(tmp_path / "a-file" / "export"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "cannot create the export directory" in done.stderr
    as_json = vaultctl(small_vault, "search", "memo", "--export", str(tmp_path / "a-file" / "x"), "--json")
    assert json.loads(as_json.stderr)["exit_code"] == 1


def test_rebuild_while_another_process_writes_is_one_line(small_vault):
    with Vault.open(Config.load(small_vault), writer=True):
        done = vaultctl(small_vault, "rebuild", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "locked by another writer" in json.loads(done.stderr)["error"]
    assert vaultctl(small_vault, "rebuild", "--json").returncode == 0


def test_an_import_with_unreadable_files_exits_3_and_archives_the_rest(tmp_path):
    """Run by a user who cannot read one of the files (root reads everything): that file is
    listed as unreadable and the run exits 3; links and FIFOs, skipped on purpose, do not."""
    user = os_user(OTHER)
    place = Path(tempfile.mkdtemp(prefix="vault-unread-", dir="/tmp"))
    try:
        place.chmod(0o755)
        box = write_maildir(place / "inbox", {f"{n}:2,": mail(n) for n in range(3)})
        os.mkfifo(box / "cur" / "fifo:2,")
        (box / "cur" / "link:2,").symlink_to("/etc/hostname")
        for p in [place / "inbox", *(place / "inbox").rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        (box / "cur" / "1:2,").chmod(0o000)  # theirs to list, not to read
        home = place / "home"
        home.mkdir()
        shutil.chown(home, user, user)
        assert as_user(user, home, "init").returncode == 0
        skipped = as_user(user, home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
        assert skipped.returncode == 3, skipped.stderr
        report = json.loads(skipped.stdout)
        assert report["appended"] == 2
        reasons = {Path(p["path"]).name: p for p in report["problems"]}
        assert set(reasons) == {"1:2,", "fifo:2,", "link:2,"}
        assert reasons["1:2,"]["unreadable"] is True and "Permission denied" in reasons["1:2,"]["reason"]
        assert not any(reasons[n].get("unreadable") for n in ("fifo:2,", "link:2,"))
        # once it can be read, the next run archives it: nothing was taken for deleted
        (box / "cur" / "1:2,").chmod(0o644)
        (box / "cur" / "fifo:2,").unlink()
        (box / "cur" / "link:2,").unlink()
        again = as_user(user, home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
        assert again.returncode == 0, again.stderr
        assert (json.loads(again.stdout)["appended"], json.loads(again.stdout)["expunged"]) == (1, 0)
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_skipped_links_and_warnings_alone_are_a_success(tmp_path):
    home = init_vault(tmp_path / "vault")
    box = write_maildir(tmp_path / "inbox", {"1:2,": mail(1), "2:2,": b"\x00\x01 not quite mail"})
    (box / "cur" / "link:2,").symlink_to("/etc/hostname")
    done = vaultctl(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["appended"] == 2 and len(report["problems"]) == 2


# ---------------------------------------------------------------- the fuzz

# daemons and commands that reach other hosts: they wait for peers instead of ending
SKIP = {
    ("worker",),
    ("collector",),
    ("collector", "ask"),
    ("dealer",),
    ("dealer", "serve"),
    ("witness", "serve"),
}
SKIP |= {("reconcile",)}
DROP_OPTIONS = {"follow"}  # maillog import --follow follows the log forever
FORCED: dict[tuple[str, ...], list[str]] = {("serve",): ["--once"]}

# Values are relative paths, resolved in the fuzz's own empty working directory: never an
# absolute path (a fuzzed --output or --to could overwrite a system file; a real run as root
# once wrote the dealer hook over /bin/sh), never a directory separator or ~.
PLAIN = st.text(
    st.characters(blacklist_characters="\x00/~", blacklist_categories=["Cs"]), max_size=16
).filter(lambda s: not s.startswith("imap"))
SPECIAL = st.sampled_from(
    [
        "now",
        "2026-12-01",
        "2026-12-01T00:00Z",
        "9999-12-31T23:59Z",
        "-",
        "",
        "0",
        "-1",
        "99999999999999999999",
        "user/jane/INBOX",
        "user/jane",
        "jane",
        "x:1:1",
        "maildir:out",
        "mbox:-",
        "mbox:out.mbox",
        "a-file/below",  # under a regular file: cannot be made
        "binary-file",  # not text (a copy of an executable)
        "text-file",
        ".",
        "memo (",
        "mon*",
        "is:flagged",
        "subject:memo",
        "case-1",
        "er-00000000",
        "*",
        "a=b",
        "section.key=1",
    ]
)
VALUES = st.one_of(SPECIAL, PLAIN, st.integers(-5, 10**12).map(str))


@st.composite
def command_lines(draw, path: tuple[str, ...], command: click.Command, item: str):
    argv = list(path) + list(FORCED.get(path, []))
    for param in command.params:
        if isinstance(param, click.Argument):
            count = (
                draw(st.integers(0, 2))
                if param.nargs == -1
                else 1
                if param.required
                else draw(st.integers(0, 1))
            )
            argv += [draw(st.one_of(VALUES, st.just(item))) for _ in range(count)]
            continue
        if not isinstance(param, click.Option) or param.name in DROP_OPTIONS or not draw(st.booleans()):
            continue
        name = max(param.opts, key=len)
        if param.is_flag:
            argv.append(name if not param.secondary_opts or draw(st.booleans()) else param.secondary_opts[0])
            continue
        choices = getattr(param.type, "choices", None)
        for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
            value = draw(st.sampled_from(list(choices)) if choices and draw(st.booleans()) else VALUES)
            argv += [name, value]
    return argv


@pytest.fixture(scope="module")
def fuzz_place(small_vault, tmp_path_factory):
    """The small vault, an item of it, and an empty working directory for relative paths."""
    found = vaultctl_run(small_vault, "search", "memo", "--output", "items")
    cwd = tmp_path_factory.mktemp("fuzz-cwd") / "here"
    cwd.mkdir()
    (cwd / "a-file").write_text("x")
    (cwd / "binary-file").write_bytes(bytes(range(256)) * 4)
    (cwd / "text-file").write_text("a line of text\n")
    return small_vault, found.out.split()[0], cwd


@pytest.mark.parametrize("path", sorted(p for p in leaf_commands() if p not in SKIP), ids=" ".join)
def test_fuzzed_arguments_never_end_in_a_traceback(fuzz_place, path, monkeypatch):
    home, item, cwd = fuzz_place
    command = leaf_commands()[path]
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("VAULT_DEBUG", raising=False)

    @settings(
        max_examples=int(os.environ.get("VAULT_FUZZ_EXAMPLES", "8")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(argv=command_lines(path, command, item))
    def run(argv):
        assert not any(a.startswith(("/", "~")) for a in argv), argv  # stays in its sandbox
        done = vaultctl_run(home, *argv)
        assert done.code in (0, 1, 2, 3), (argv, done)
        assert "Traceback" not in done.err and INTERNAL not in done.err, (argv, done)

    run()
