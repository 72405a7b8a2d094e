"""``vaultctl keys`` and the plaintext rule (vault/curve/): key pairs with their secrets the
owner's alone, allow-lists edited by name, bad keys refused in one line; a ZeroMQ link without
keys, or with ``allow_plaintext`` on an endpoint that is not local, does not start, and says
what to do; plain where it is allowed (loopback and said so) still works."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner

from vault.config import Config
from vault.curve.guard import ClientCurve, local_endpoint
from vault.curve.keys import fingerprint, parse_public
from vault.ingest.collector.client import CollectorClient, CollectorError, MailboxUnknown
from vault.testing.net import free_port
from vaultctl import cli

REPO = Path(__file__).resolve().parents[2]


def vaultctl(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], prog_name="vaultctl")


def test_keys_init_show_trust_revoke(tmp_path):
    home = tmp_path / "h"
    made = vaultctl(home, "keys", "init", "worker")
    assert made.exit_code == 0, made.output
    public = made.output.strip().splitlines()[-1]
    assert len(public) == 40 and (home / "keys/curve/worker.pub").read_text().strip() == public
    assert (home / "keys/curve/worker.key").stat().st_mode & 0o777 == 0o600
    again = vaultctl(home, "keys", "init", "worker")  # kept, not replaced
    assert again.output.strip().splitlines()[-1] == public and "exists" in again.output

    assert vaultctl(home, "keys", "init", "collector").exit_code == 0
    assert vaultctl(home, "keys", "trust", "collector", "vault1", public).exit_code == 0
    shown = json.loads(vaultctl(home, "keys", "show", "--json").output)
    assert shown["trusted"]["collector"]["vault1"]["public_key"] == public
    assert set(shown["keys"]) == {"worker", "collector"}

    for args, why in (
        (("trust", "collector", "x", "not-a-key"), "is not a CURVE public key"),
        (("trust", "collector", "../escape", public), "a client name is"),
        (("trust", "everyone", "x", public), "Invalid value"),
        (("revoke", "collector", "nobody"), "is not on the collector allow-list"),
    ):
        done = vaultctl(home, "keys", *args)
        assert done.exit_code != 0 and why in done.output, (args, done.output)
    assert vaultctl(home, "keys", "revoke", "collector", "vault1").exit_code == 0
    assert json.loads(vaultctl(home, "keys", "show", "--json").output)["trusted"]["collector"] == {}


def test_a_vault_home_is_made_with_its_keys_and_trusts_its_own_clients(tmp_path):
    home = tmp_path / "v"
    done = vaultctl(home, "init")
    assert done.exit_code == 0, done.output
    shown = json.loads(vaultctl(home, "keys", "show", "--json").output)
    assert set(shown["keys"]) == {"broker", "collector", "dealer", "worker"}
    assert {name: set(clients) for name, clients in shown["trusted"].items()} == {
        "dealers": {"local"},
        "workers": {"local"},
        "collector": {"local"},
    }


@pytest.mark.parametrize(
    "endpoint, local",
    [
        ("tcp://127.0.0.1:5570", True),
        ("tcp://127.9.9.9:1", True),
        ("tcp://[::1]:5570", True),
        ("tcp://localhost:5570", True),
        ("ipc:///run/vault/broker", True),
        ("tcp://0.0.0.0:5570", False),
        ("tcp://*:5570", False),
        ("tcp://192.0.2.20:5570", False),
        ("tcp://eth0:5570", False),
        ("pgm://239.0.0.1:5570", False),
    ],
)
def test_which_endpoints_may_be_plain(endpoint, local):
    assert local_endpoint(endpoint) is local


def _collector(home: Path, tmp_path: Path, bind: str, *settings: str):
    conf = tmp_path / "imapd.conf"
    conf.write_text(f"partition-default: {tmp_path / 'spool'}\n")
    (tmp_path / "spool").mkdir(exist_ok=True)
    assert vaultctl(home, "init", "--mail-host", "--set", "collector.imap_admin=", *settings).exit_code == 0
    return subprocess.Popen(
        [sys.executable, str(REPO / "vaultctl.py"), "--home", str(home), "collector"]
        + ["--bind", bind, "--imapd-conf", str(conf)],
        stderr=subprocess.PIPE,
        text=True,
    )


def test_plaintext_is_refused_off_loopback_and_without_keys(tmp_path):
    home = tmp_path / "mail"
    proc = _collector(home, tmp_path, "tcp://0.0.0.0:5999", "--set", "collector.allow_plaintext=true")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "plain ZeroMQ is allowed on loopback and ipc endpoints only" in err, err

    bare = tmp_path / "bare"  # no config, no keys: the defaults, which are CURVE
    done = vaultctl(bare, "collector", "ask", "folder", "user/alice", "--address", "tcp://192.0.2.1:5574")
    assert done.exit_code != 0 and "keys init worker" in done.output, done.output
    assert done.output.count("\n") == 1, done.output


def test_plain_on_loopback_when_the_config_says_so(tmp_path):
    home = tmp_path / "mail"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    proc = _collector(home, tmp_path, address, "--set", "collector.allow_plaintext=true")
    try:
        plain = CollectorClient.from_config(Config.load(home), address)
        assert plain.curve is None
        deadline = time.monotonic() + 30
        while True:
            try:
                plain.fetch("a" * 24, 1)
            except MailboxUnknown as e:  # the collector answered, in plain
                assert "NOMAILBOX" in str(e)
                break
            except CollectorError:  # not listening yet
                assert time.monotonic() < deadline
            else:
                raise AssertionError("a mailbox the spool does not have was found")
        public, secret = zmq.curve_keypair()
        curved = CollectorClient(
            address, timeout=2, curve=ClientCurve(public, secret, public, "CURVE to plain")
        )
        with pytest.raises(CollectorError):  # CURVE to a plain server: no answer either way
            curved.fetch("a" * 24, 1)
        curved.close()
        plain.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_dealer_without_the_brokers_key_spools_and_ships_nothing(tmp_path):
    """Cyrus needs the dealer before the vault host exists: it runs, spools, says why it does
    not ship, and never ships in plain."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "vaultctl.py"), "--home", str(tmp_path / "bare"), "dealer", "serve"]
        + ["--mode", "external", "--spool", str(tmp_path / "spool"), "--broker", "tcp://192.0.2.1:5570"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not any("dealer ready" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
    finally:
        proc.terminate()
        proc.wait(10)
    said = "".join(lines)
    assert "not shipping, only spooling" in said and "keys init dealer" in said, said
    assert "shipping to" not in said


def test_keys_init_alone_gives_an_older_home_what_init_would(tmp_path):
    home = tmp_path / "mail"
    assert vaultctl(home, "init", "--mail-host").exit_code == 0
    for name in ("dealer", "collector"):
        for suffix in (".key", ".pub"):
            (home / "keys" / "curve" / f"{name}{suffix}").unlink()
    done = vaultctl(home, "keys", "init")
    assert done.exit_code == 0, done.output
    assert [line.split()[0] for line in done.output.splitlines()] == ["dealer", "collector"]
    assert set(json.loads(vaultctl(home, "keys", "show", "--json").output)["keys"]) == {"dealer", "collector"}


def test_a_client_offering_the_wrong_server_key_says_which(tmp_path, caplog):
    """A vault home that was never given the collector's key offers its own: the client's log
    names the fingerprint it offered, so a wrong or missing ``keys server`` shows at once."""
    mail, home = tmp_path / "mail", tmp_path / "vault"
    address = f"tcp://127.0.0.1:{free_port()}"
    assert vaultctl(home, "init", "--set", "collector.timeout_seconds=2").exit_code == 0
    worker = (home / "keys/curve/worker.pub").read_text().strip()
    proc = _collector(mail, tmp_path, address)
    try:
        assert vaultctl(mail, "keys", "trust", "collector", "vault", worker).exit_code == 0
        own = (home / "keys/curve/collector.pub").read_text().strip()
        theirs = (mail / "keys/curve/collector.pub").read_text().strip()
        assert own != theirs
        with caplog.at_level("WARNING", logger="vault.curve"):
            wrong = CollectorClient.from_config(Config.load(home), address)
            with pytest.raises(CollectorError):
                wrong.fetch("a" * 24, 1)
            wrong.close()
            deadline = time.monotonic() + 10
            while "not connected to" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.1)
        assert f"(key {fingerprint(parse_public(own))})" in caplog.text, caplog.text
        assert vaultctl(home, "keys", "server", "collector", theirs).exit_code == 0
        with CollectorClient.from_config(Config.load(home), address) as right:
            deadline = time.monotonic() + 30
            while True:
                try:
                    right.fetch("a" * 24, 1)
                except MailboxUnknown:  # answered: the handshake held
                    break
                except CollectorError:  # not listening yet
                    assert time.monotonic() < deadline
    finally:
        proc.terminate()
        proc.wait(10)
