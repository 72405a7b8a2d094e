"""vaultctl dealer as notifyd runs it, the installed /bin/sh hook run as user cyrus, status."""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from tests.ingest.dealer.helpers import REPO, DealerProcess, TestBroker, event_lines, spool_files, wait_for
from vault.ingest.dealer.spool import EventSpool, dropped
from vault.testing import cli

EVENTS = event_lines()
NOTIFYD_ARGV = ["-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f"]


def vaultctl(*args, stdin=b"", env=None, home=None) -> subprocess.CompletedProcess[bytes]:
    return cli.vaultctl(
        home or "/nonexistent-vault",
        *args,
        text=False,
        input=stdin,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


@pytest.fixture
def cyrus_dir():
    """A directory user cyrus can reach (pytest's tmp dirs are root-only)."""
    d = tempfile.mkdtemp(prefix="dealer-cli-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_notifyd_argv_with_its_bare_trailing_f(tmp_path):
    spool = tmp_path / "spool"
    done = vaultctl("dealer", *NOTIFYD_ARGV, stdin=EVENTS[0] + b"\n", env={"VAULT_DEALER_SPOOL": str(spool)})
    assert done.returncode == 0, done.stderr
    done = vaultctl("dealer", "--spool", str(spool), *NOTIFYD_ARGV, stdin=EVENTS[1] + b"\n")
    assert done.returncode == 0, done.stderr
    s = EventSpool(spool)
    assert [s.read(n) for n in s.pending()] == EVENTS[:2]


def test_notifyd_argv_with_options_after_f(tmp_path):
    done = vaultctl(
        "dealer",
        "--spool",
        str(tmp_path),
        "-c",
        "EVENT",
        "-p",
        "low",
        "-u",
        "u",
        "-m",
        "m",
        "-f",
        "opt1",
        "opt2",
        stdin=EVENTS[3] + b"\n",
    )
    assert done.returncode == 0, done.stderr
    assert [EventSpool(tmp_path).read(n) for n in EventSpool(tmp_path).pending()] == [EVENTS[3]]


def test_spool_from_the_vault_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[dealer]\nspool_path = "events"\n')
    assert vaultctl("dealer", *NOTIFYD_ARGV, stdin=EVENTS[2] + b"\n", home=home).returncode == 0
    assert len(spool_files(home / "events")) == 1


def test_no_spool_anywhere_is_a_clear_error():
    done = vaultctl("dealer", *NOTIFYD_ARGV, stdin=EVENTS[0] + b"\n", env={"VAULT_DEALER_SPOOL": ""})
    assert done.returncode != 0 and b"--spool" in done.stderr and b"VAULT_DEALER_SPOOL" in done.stderr


def test_empty_stdin_is_quarantined_and_reported(tmp_path):
    assert vaultctl("dealer", "--spool", str(tmp_path), *NOTIFYD_ARGV, stdin=b"").returncode == 0
    status = vaultctl("dealer", "status", "--spool", str(tmp_path))
    assert b"1 quarantined" in status.stdout and b"no event on stdin" in status.stdout


def run_hook(hook, raw: bytes):
    done = subprocess.run(
        [hook, *NOTIFYD_ARGV],
        input=raw,
        capture_output=True,
        user="cyrus",
        group="mail",
        extra_groups=[],
        cwd="/",
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("fsync", ["--fsync", "--no-fsync"])
def test_installed_hook_as_user_cyrus_then_shipped_in_order(cyrus_dir, fsync):
    spool, hook = os.path.join(cyrus_dir, "spool"), os.path.join(cyrus_dir, "notify-hook")
    done = vaultctl("dealer", "install-hook", "--spool", spool, "--output", hook, "--owner", "cyrus", fsync)
    assert done.returncode == 0, done.stderr
    with open(hook, "rb") as f:
        assert f.readline() == b"#!/bin/sh\n"
    for line in EVENTS[:12]:
        run_hook(hook, line + b"\n")
    kept = [line for line in EVENTS[:12] if not dropped(line)]
    log = os.path.join(spool, "hook.log")
    assert open(log, "rb").read() == b"".join(line + b"\n" for line in EVENTS[:12])
    assert os.stat(log).st_uid == pwd.getpwnam("cyrus").pw_uid
    with TestBroker() as broker:
        with DealerProcess("--mode", "external", "--spool", spool, "--broker", broker.address):
            wait_for(
                lambda: len(broker.received) == len(kept) and not spool_files(spool),
                what="the hook's events to ship",
            )
    assert broker.raws() == kept  # MailboxModseq dropped (spool.DROPPED_EVENTS)


def test_serve_refuses_a_second_shipper_on_the_same_spool(tmp_path):
    with DealerProcess("--mode", "external", "--spool", str(tmp_path), "--broker", "tcp://127.0.0.1:9"):
        second = DealerProcess(
            "--mode", "external", "--spool", str(tmp_path), "--broker", "tcp://127.0.0.1:9"
        )
        with pytest.raises(AssertionError, match="another shipper"):
            second.start()


def test_vaultctl_status_shows_the_dealer_quarantine(tmp_path):
    home = tmp_path / "vault"
    assert vaultctl("init", home=home).returncode == 0
    spool = EventSpool(home / "dealer-spool")  # the [dealer] spool_path default
    spool.write(EVENTS[0])
    spool.quarantine(
        b"\xff", "datagram on /run/n.sock: truncated datagram: 1 bytes without the terminating NUL"
    )
    done = vaultctl("status", home=home)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "dealer_spool_pending: 1" in out and "dealer_spool_quarantined: 1" in out
    assert "truncated datagram" in out
