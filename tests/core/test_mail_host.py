"""A mail-host home (`vaultctl init --mail-host`): dealer and collector config only; the dealer
and collector run from it, vault-host commands refuse it with one error."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault.config import Config
from vault.secrets import secret
from vault.testing.net import free_port
from vaultctl import cli

REPO = Path(__file__).resolve().parents[2]
EVENT = b'{"event":"MessageNew","uri":"imap://alice@vault.test/INBOX;UIDVALIDITY=1/;UID=1"}\n'


def vaultctl(home, *args, stdin=None):
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=stdin, prog_name="vaultctl")


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "mail"
    done = vaultctl(home, "init", "--mail-host", "--set", "collector.imap_admin=")
    assert done.exit_code == 0, done.output
    return home


def test_init_writes_only_the_dealer_and_collector_config(home):
    assert sorted(p.name for p in home.iterdir()) == ["config.toml", "keys"]
    # CURVE key pairs of the dealer and the collector, the secrets the owner's alone
    curve = home / "keys" / "curve"
    assert sorted(p.name for p in curve.iterdir()) == [
        "collector.key",
        "collector.pub",
        "dealer.key",
        "dealer.pub",
    ]
    assert {oct((curve / f"{c}.key").stat().st_mode & 0o777) for c in ("collector", "dealer")} == {"0o600"}
    text = (home / "config.toml").read_text()
    assert 'role = "mail-host"' in text
    assert "[dealer]" in text and "[collector]" in text
    assert "[ledger]" not in text and "[store]" not in text
    assert "imap_password =" not in text and "imap_password_file =" in text  # a file, never the secret
    assert Config.load(home).role == "mail-host"


def test_init_refuses_an_existing_home_a_password_and_unknown_keys(home, tmp_path):
    again = vaultctl(home, "init", "--mail-host")
    assert again.exit_code == 1 and "already set up" in again.output
    for bad, says in (
        ("collector.imap_password=x", "not kept in config.toml"),
        ("dealer.nope=1", "unknown configuration key 'dealer.nope'"),
        ("dealer.window=many", "'dealer.window' must be int"),
        ("store.path=/x", "a mail-host home has no [store]"),
    ):
        done = vaultctl(tmp_path / "other", "init", "--mail-host", "--set", bad)
        assert done.exit_code == 1 and says in done.output, done.output
        assert not (tmp_path / "other" / "config.toml").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["search", "x"],
        ["import", "/nonexistent", "--mailbox", "user/a"],
        ["ls"],
        ["serve", "--once"],
        ["verify"],
    ],
)
def test_vault_commands_refuse_a_mail_host_home(home, args):
    done = vaultctl(home, *args)
    assert done.exit_code == 1
    assert done.output.count("\n") == 1, done.output
    assert "is a mail-host home" in done.output and f"'vaultctl {args[0]}' needs a vault home" in done.output
    assert sorted(p.name for p in home.iterdir()) == ["config.toml", "keys"]  # what init made


def test_status_shows_the_dealer_spool(home):
    done = vaultctl(home, "status", "--json")
    assert done.exit_code == 0, done.output
    assert '"role": "mail-host"' in done.output and "dealer_spool" in done.output


def test_the_dealer_spools_into_the_homes_spool(home):
    done = vaultctl(home, "dealer", "-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f", stdin=EVENT)
    assert done.exit_code == 0, done.output
    assert [p.read_bytes() for p in (home / "dealer-spool" / "new").iterdir()] == [EVENT.rstrip()]
    status = vaultctl(home, "dealer", "status")
    assert "1 waiting to ship" in status.output


def test_the_collector_serves_from_a_mail_host_home(home, tmp_path):
    conf = tmp_path / "imapd.conf"
    conf.write_text(f"partition-default: {tmp_path / 'spool'}\n")
    (tmp_path / "spool").mkdir()
    port = free_port()
    # asked from this home as a worker would be: its key on the collector's allow-list
    worker = vaultctl(home, "keys", "init", "worker")
    assert worker.exit_code == 0, worker.output
    public = worker.output.strip().splitlines()[-1]
    assert vaultctl(home, "keys", "trust", "collector", "checker", public).exit_code == 0
    server = subprocess.Popen(
        [sys.executable, str(REPO / "vaultctl.py"), "--home", str(home), "collector"]
        + ["--bind", f"tcp://127.0.0.1:{port}", "--imapd-conf", str(conf)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            done = vaultctl(
                home, "collector", "ask", "fetch", "a" * 24, "1", "--address", f"tcp://127.0.0.1:{port}"
            )
            if "NOMAILBOX" in done.output or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "NOMAILBOX" in done.output, done.output
    finally:
        server.terminate()
        server.wait(10)


def test_the_admin_password_never_needs_the_config(tmp_path):
    config = Config.defaults(tmp_path)
    assert secret(config, "collector", "imap_password", env={}) == ""
    pw = tmp_path / "pw"
    pw.write_text("s3cret pass\n")
    os.chmod(pw, 0o600)
    env = {"VAULT_COLLECTOR_PASSWORD_FILE": str(pw)}
    assert secret(config, "collector", "imap_password", env=env) == "s3cret pass"
    env["VAULT_COLLECTOR_PASSWORD"] = "from-env"
    assert secret(config, "collector", "imap_password", env=env) == "from-env"


def test_vault_init_takes_settings_but_not_the_mail_host_role(tmp_path):
    done = vaultctl(
        tmp_path / "v",
        "init",
        "--set",
        "dealer.broker=tcp://192.0.2.20:5570",
        "--set",
        "store.pack_size=1024",
    )
    assert done.exit_code == 0, done.output
    config = Config.load(tmp_path / "v")
    assert config.role == "vault" and config["store"]["pack_size"] == 1024
    assert config["dealer"]["broker"] == "tcp://192.0.2.20:5570"
    refused = vaultctl(tmp_path / "w", "init", "--set", "home.role=mail-host")
    assert refused.exit_code == 1 and "is a mail-host home" in refused.output
    assert not (tmp_path / "w").exists()


def test_version_is_the_package_version():
    from importlib.metadata import version

    done = vaultctl("/nonexistent", "--version")
    assert done.exit_code == 0 and done.output == f"vaultctl {version('vault')}\n"
