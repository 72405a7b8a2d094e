"""Who may read mail from the collector: ``vaultctl collector`` (a real process, a real Cyrus)
answers only clients whose CURVE key is on its allow-list; a keyless client and an unlisted
key get nothing and are logged; a key added and the server sent SIGHUP works, a key revoked
and SIGHUP is refused, even on a connection it opened before."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import zmq

from tests.ingest.collector.test_collector_cyrus import message, uniqueid
from vault.curve.guard import ClientCurve
from vault.curve.keys import fingerprint, public_key
from vault.ingest.collector.client import CollectorClient, CollectorError
from vault.testing.cli import vaultctl, vaultctl_argv
from vault.testing.logwatch import LogWatch
from vault.testing.net import free_port

pytestmark = pytest.mark.cyrus


class Running:
    def __init__(self, home: Path, cyrus, log: Path):
        self.home, self.log_path = home, log
        self.address = f"tcp://127.0.0.1:{free_port()}"
        argv = vaultctl_argv(
            "collector",
            "--bind",
            self.address,
            "--imapd-conf",
            str(cyrus.config_path),
            "--imap-port",
            str(cyrus.imap_port),
            home=home,
        )
        env = {**os.environ, "VAULT_COLLECTOR_PASSWORD": cyrus.admin_password}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.watch = LogWatch(self.proc, log)
        self.watch.wait("collector listening")

    def log(self) -> str:
        return self.watch.text()

    def wait_log(self, text: str) -> None:
        self.watch.wait(text)

    def reload(self) -> None:
        """SIGHUP, and wait until the allow-list is read again."""
        self.watch.reload("allow-list collector reloaded")

    def client(self, curve: ClientCurve | None, timeout: float = 3.0) -> CollectorClient:
        return CollectorClient(self.address, timeout=timeout, curve=curve)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def _ok(home: Path, *args: str) -> str:
    done = vaultctl(home, *args, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def collector_home(tmp_path, cyrus_server):
    """A vault home (its worker on its own collector allow-list, as init makes it) serving the
    collector, and a message of alice's."""
    home = tmp_path / "vault"
    _ok(home, "init")
    alice = cyrus_server.imap("alice")
    status, said = alice.append("INBOX", None, None, message("curve secret"))
    alice.logout()
    assert status == "OK", said
    # its own UID (UIDPLUS): the server is shared, other tests deliver to alice too
    appended = re.search(rb"APPENDUID \d+ (\d+)", said[0])
    assert appended, said
    running = Running(home, cyrus_server, tmp_path / "collector.log")
    yield running, uniqueid(cyrus_server, "user/alice"), int(appended.group(1))
    running.stop()


def stranger(home: Path) -> ClientCurve:
    public, secret = zmq.curve_keypair()
    server = public_key(home, "collector")
    assert server is not None
    return ClientCurve(public, secret, server, "stranger")


def test_only_listed_keys_read_mail_and_refusals_are_logged(collector_home):
    running, inbox, uid = collector_home
    asked = vaultctl(running.home, "collector", "ask", "fetch", inbox, str(uid), "--address", running.address)
    assert asked.returncode == 0 and "curve secret" in asked.stdout, asked.stderr

    for curve in (None, stranger(running.home)):
        with running.client(curve) as client, pytest.raises(CollectorError, match="no answer"):
            client.fetch(inbox, uid)
    running.wait_log("refused a client on collector")
    assert "without CURVE" in running.log()
    unlisted = stranger(running.home)
    with running.client(unlisted) as client, pytest.raises(CollectorError):
        client.folder("user/alice")
    running.wait_log(f"refused 127.0.0.1 on collector: key {fingerprint(unlisted.public)}")

    # another vault home's 'collector ask' (keys of its own, none trusted here): nothing either
    other = running.home.parent / "other"
    _ok(other, "init")
    (other / "keys" / "curve" / "collector.pub").write_bytes(
        (running.home / "keys/curve/collector.pub").read_bytes()
    )
    refused = vaultctl(
        other, "collector", "ask", "fetch", inbox, str(uid), "--address", running.address, timeout=120
    )
    assert refused.returncode != 0 and "curve secret" not in refused.stdout
    assert "no answer" in refused.stderr


def test_rotation_without_a_restart(collector_home):
    running, inbox, uid = collector_home
    new = stranger(running.home)
    with running.client(new) as client, pytest.raises(CollectorError):
        client.fetch(inbox, uid)

    _ok(running.home, "keys", "trust", "collector", "vault2", new.public.decode())
    running.reload()
    kept = running.client(new, timeout=20)
    assert b"curve secret" in kept.fetch(inbox, uid)  # the new key, same process

    _ok(running.home, "keys", "revoke", "collector", "local")  # the old key: init's worker
    running.reload()
    asked = vaultctl(
        running.home, "collector", "ask", "fetch", inbox, str(uid), "--address", running.address, timeout=120
    )
    assert asked.returncode != 0 and "curve secret" not in asked.stdout

    _ok(running.home, "keys", "revoke", "collector", "vault2")
    running.reload()
    kept.timeout_ms = 3000
    with pytest.raises(CollectorError, match="no answer"):  # its connection predates the revocation
        kept.fetch(inbox, uid)
    running.wait_log("no longer allowed")
    kept.close()
    assert running.proc.poll() is None
