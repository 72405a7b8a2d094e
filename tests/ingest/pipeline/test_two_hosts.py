"""Two hosts on a LAN the test makes (vault/testing/netns.py): the mail host (the test's own
network namespace: Cyrus, the dealer and the collector, with a mail-host home) and the vault
host (a namespace of its own: the vault service and a worker, with a vault home), their keys
exchanged with ``vaultctl keys`` as the README says. A delivery is archived over CURVE, and a
capture of the vault host's traffic while it travels holds neither its subject nor its body.
A third host with no key, or a key nobody trusted, gets nothing from the broker's dealer port
or the collector, and both servers log it with its address and key fingerprint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import zmq

from vault.curve.keys import fingerprint
from vault.testing.apt import apt_install
from vault.testing.cli import REPO, vaultctl, vaultctl_argv
from vault.testing.cyrus_server import new_base_dir
from vault.testing.net import free_port
from vault.testing.netns import Host, Lan
from vault.testing.pipeline import Component

pytestmark = pytest.mark.cyrus


def ok(home: Path, *args: str) -> str:
    done = vaultctl(home, *args, timeout=120, cwd=REPO)
    assert done.returncode == 0, f"vaultctl {' '.join(args)}: {done.stderr}"
    return done.stdout


def key(home: Path, component: str) -> str:
    return (home / "keys" / "curve" / f"{component}.pub").read_text().strip()


def wait(what: str, predicate, component: Component | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if component is not None and not component.alive:
            raise AssertionError(f"{what}: {component.name} exited:\n{component.log()[-3000:]}")
        assert time.monotonic() < deadline, f"{what} not within {seconds} s" + (
            f":\n{component.log()[-3000:]}" if component else ""
        )
        time.sleep(0.1)


class TwoHosts:
    def __init__(self, tmp_path: Path, cyrus, spool: Path, lan: Lan, vault_host: Host):
        self.lan, self.vault_host, self.cyrus = lan, vault_host, cyrus
        self.mail, self.vault = tmp_path / "mail", tmp_path / "vault"
        ports = {name: free_port() for name in ("dealer", "worker", "control", "collector")}
        v, m = vault_host.address, lan.address
        self.broker = f"tcp://{v}:{ports['dealer']}"
        self.collector = f"tcp://{m}:{ports['collector']}"
        ok(
            self.mail,
            "init",
            "--mail-host",
            *("--set", "dealer.mode=stream", "--set", f"dealer.broker={self.broker}"),
            *("--set", f"dealer.spool_path={spool}", "--set", f"dealer.listen_path={cyrus.notify_target}"),
            *("--set", "dealer.socket_owner=cyrus", "--set", f"collector.bind={self.collector}"),
            *(
                "--set",
                f"collector.imapd_conf={cyrus.config_path}",
                "--set",
                f"collector.imap_port={cyrus.imap_port}",
            ),
            *("--set", f"collector.imap_admin={cyrus.admin}"),
        )
        work, control = f"tcp://{v}:{ports['worker']}", f"tcp://{v}:{ports['control']}"
        ok(
            self.vault,
            "init",
            *("--set", f"broker.dealer_bind={self.broker}", "--set", f"broker.worker_bind={work}"),
            *("--set", f"broker.control_bind={control}", "--set", f"broker.worker_address={work}"),
            *("--set", f"broker.control_address={control}", "--set", f"collector.address={self.collector}"),
            *("--set", "broker.worker_timeout_seconds=5.0", "--set", "broker.postpone_seconds=1.0"),
        )
        # the key exchange of the README's "CURVE keys"
        ok(self.vault, "keys", "trust", "dealers", "mx1", key(self.mail, "dealer"))
        ok(self.vault, "keys", "server", "collector", key(self.mail, "collector"))
        ok(self.mail, "keys", "trust", "collector", "vault", key(self.vault, "worker"))
        ok(self.mail, "keys", "server", "broker", key(self.vault, "broker"))
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.env = {**os.environ, "VAULT_COLLECTOR_PASSWORD": cyrus.admin_password, "PYTHONUNBUFFERED": "1"}
        self.components: list[Component] = []

    def start(self, name: str, home: Path, *args: str, host: Host | None = None) -> Component:
        argv = vaultctl_argv(*args, home=home)
        component = Component(name, host.argv(argv) if host else argv, self.logs / f"{name}.log", self.env)
        self.components.append(component.start())
        return component

    def start_all(self) -> None:
        self.collector_proc = self.start("collector", self.mail, "collector")
        wait("the collector", lambda: "collector listening" in self.collector_proc.log(), self.collector_proc)
        self.service = self.start("service", self.vault, "serve", host=self.vault_host)
        wait("the vault service", (self.vault / "vault.sock").exists, self.service)
        self.start("worker", self.vault, "worker", host=self.vault_host)
        self.dealer = self.start("dealer", self.mail, "dealer", "serve")
        wait("the dealer", lambda: "dealer ready" in self.dealer.log(), self.dealer)

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()

    def archived(self, subject: str) -> bool:
        done = vaultctl(self.vault, "search", f'subject:"{subject}"', "--json", timeout=120, cwd=REPO)
        return done.returncode == 0 and subject in done.stdout


@pytest.fixture
def two_hosts(tmp_path, cyrus_factory):
    if shutil.which("tcpdump") is None:
        apt_install("tcpdump")  # scripts/debian-packages-test.txt
    base = new_base_dir("spool")
    base.chmod(0o755)
    lan = Lan()
    hosts = None
    try:
        vault_host = lan.host("vault")
        cyrus = cyrus_factory(mode="stream")
        hosts = TwoHosts(tmp_path, cyrus, base / "spool", lan, vault_host)
        hosts.start_all()
        yield hosts
    finally:
        if hosts is not None:
            hosts.stop()
        lan.close()
        shutil.rmtree(base, ignore_errors=True)


def test_a_delivery_crosses_hosts_encrypted_and_outsiders_get_nothing(two_hosts: TwoHosts, tmp_path):
    hosts = two_hosts
    capture = tmp_path / "veth.pcap"
    tcpdump = subprocess.Popen(
        # --immediate-mode: each packet written as it comes (else the last second's may still
        # sit in the kernel's ring buffer when tcpdump is stopped, and never be written)
        [
            "tcpdump",
            "-i",
            hosts.vault_host.port,
            "--immediate-mode",
            "-U",
            "-s",
            "0",
            "-w",
            str(capture),
            "tcp",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tcpdump.stderr is not None
        assert "listening on" in tcpdump.stderr.readline()
        token = uuid.uuid4().hex
        subject = f"two hosts {token[:8]}"
        body = f"the body only the archive may read, {token}"
        message = (
            f"From: bob@example.org\r\nTo: alice@vault.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{token}@example.org>\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
        ).encode()
        hosts.cyrus.lmtp_deliver("alice", message)
        wait("the delivery archived on the vault host", lambda: hosts.archived(subject), hosts.service, 120)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(10)
    captured = capture.read_bytes()
    assert subject.encode() not in captured and token.encode() not in captured
    assert b"alice" not in captured  # not even the event's mailbox name
    # and the capture did see the two links carry it: packets with payload both ways (how
    # many depends on what else the service asks the collector meanwhile)
    for address in (hosts.broker, hosts.collector):
        server = address.removeprefix("tcp://").replace(":", ".")  # tcpdump -nn's host.port
        seen = subprocess.run(
            [
                "tcpdump",
                "-nn",
                "-r",
                str(capture),
                f"tcp port {address.rsplit(':', 1)[1]} and (tcp[tcpflags] & tcp-push != 0)",
            ],
            capture_output=True,
            text=True,
        )
        flows = [
            line.split(" IP ", 1)[1].split(":", 1)[0] for line in seen.stdout.splitlines() if " IP " in line
        ]
        to_server = [f for f in flows if f.endswith(f"> {server}")]
        from_server = [f for f in flows if f.startswith(f"{server} >")]
        assert to_server and from_server, (address, seen.stdout, seen.stderr)

    # a third host: no key, then a key of its own, with the servers' right public keys
    outsider = hosts.lan.host("outsider")
    public, secret = zmq.curve_keypair()
    mailbox = json.loads(ok(hosts.vault, "ls", "--json"))
    inbox = next(f for f in mailbox if f["name"] == "user/alice")["mailbox_id"]
    done = subprocess.run(
        outsider.argv(
            [
                str(REPO / ".venv" / "bin" / "python"),
                "-m",
                "tests.ingest.pipeline.outsider",
                hosts.broker,
                hosts.collector,
                key(hosts.vault, "broker"),
                key(hosts.mail, "collector"),
                public.decode(),
                secret.decode(),
                inbox,
            ]
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers == {
        "dealer port, keyless": [],
        "collector, keyless": [],
        "dealer port, unlisted": [],
        "collector, unlisted": [],
    }
    print_ = fingerprint(public)
    wait(
        "the refusals logged", lambda: print_ in hosts.service.log() and print_ in hosts.collector_proc.log()
    )
    assert f"refused {outsider.address} on dealers: key {print_}" in hosts.service.log()
    assert f"refused {outsider.address} on collector: key {print_}" in hosts.collector_proc.log()
    assert "without CURVE" in hosts.service.log() and "without CURVE" in hosts.collector_proc.log()
    assert b"general-counsel" not in (hosts.vault / "broker-jobs.sqlite").read_bytes()
