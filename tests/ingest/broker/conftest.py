"""A vault with mail in it, a legal hold on that mail and a rule that would purge it all, run
by the real ``vaultctl serve`` (broker, committer, local API) on free loopback ports: what
the wire tests attack. No Cyrus: the attackers write the events themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.core.helpers import init_vault, write_maildir
from vault.archive import Vault
from vault.config import DEFAULTS, Config
from vault.ingest.broker.jobs import Job, JobStore
from vault.testing.cli import vaultctl, vaultctl_argv
from vault.testing.logwatch import LogWatch
from vault.testing.net import free_port

MESSAGES = 30
CUSTODIAN = "jane"
FOLDER = "user/jane/INBOX"
MATTER = "case-1"
PURGE_EVERYTHING = '[[rule]]\nname = "everything"\npurge_after = "1d"\n[rule.match]\nall = true\n'


def mail(n: int) -> bytes:
    return (
        f"From: bob@example.org\r\nTo: jane@example.org\r\nSubject: matter {n}\r\n"
        f"Message-ID: <wire{n}@example.org>\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    ).encode()


@dataclass
class Served:
    home: Path
    addresses: dict[str, str]
    proc: subprocess.Popen
    log_path: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def log(self) -> str:
        """What ``vaultctl serve`` logged so far."""
        return LogWatch(self.proc, self.log_path).text()

    def wait_log(self, text: str, seconds: float = 30, count: int = 1) -> None:
        LogWatch(self.proc, self.log_path).wait(text, seconds, count)

    def reload(self) -> None:
        """SIGHUP the service; wait until it has read the workers allow-list again."""
        LogWatch(self.proc, self.log_path).reload("allow-list workers reloaded")

    @property
    def config(self) -> Config:
        return Config.load(self.home)

    def vaultctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command as an operator runs it (while the service runs: through it)."""
        return vaultctl(self.home, *args, timeout=300)

    def json(self, *args: str):
        done = self.vaultctl(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def job(self, job_id: str) -> Job | None:
        store = JobStore.from_config(self.config)
        try:
            return store.get(job_id)
        finally:
            store.close()

    def wait_job(self, job_id: str, state: str, seconds: float = 60) -> Job:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job is not None and job.state == state:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id[:12]} not {state} within {seconds} s: {self.job(job_id)}")

    def entries(self, *kinds: str) -> list:
        """Committed ledger entries (of these kinds), read as any reader may."""
        with Vault.open(self.config, catch_up=False) as vault:
            return [e for e in vault.ledger.entries() if not kinds or e.kind in kinds]

    def start_worker(self) -> subprocess.Popen:
        """A real ``vaultctl worker``."""
        proc = subprocess.Popen(
            vaultctl_argv("worker", home=self.home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.workers.append(proc)
        return proc

    def items(self) -> list[str]:
        """The ids of the folder's messages present now."""
        with Vault.open(self.config, catch_up=False) as vault:
            mailbox_id = vault.catalog.folder_id(FOLDER)
            assert mailbox_id is not None
            return sorted(i["item"] for i in vault.catalog.live_items(mailbox_id))

    def untouched(self, tmp_path: Path, size: int) -> None:
        """Nothing changed since the ledger had ``size`` entries: the hold is active, every
        message is there and restorable, the vault verifies with every blob re-read."""
        assert len(self.entries()) == size
        holds = self.json("hold", "list")
        assert [(h["matter"], h.get("released_at")) for h in holds] == [(MATTER, None)]
        assert len(self.items()) == MESSAGES
        target = tmp_path / f"restored-{size}-{time.monotonic_ns()}"
        done = self.vaultctl("restore", "--mailbox", FOLDER, "--at", "now", "--to", f"maildir:{target}")
        assert done.returncode == 0, done.stderr
        assert sum(1 for sub in ("cur", "new") for f in (target / sub).glob("*") if f.is_file()) == MESSAGES
        verified = self.vaultctl("verify", "--read-data")
        assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture
def served(tmp_path):
    addresses = {
        name: f"tcp://127.0.0.1:{free_port()}" for name in ("dealer", "worker", "control", "collector")
    }
    home = init_vault(
        tmp_path / "vault",
        **{
            "broker.dealer_bind": addresses["dealer"],
            "broker.worker_bind": addresses["worker"],
            "broker.control_bind": addresses["control"],
            "broker.worker_address": addresses["worker"],
            "broker.control_address": addresses["control"],
            "broker.worker_timeout_seconds": 3.0,
            "dealer.broker": addresses["dealer"],
            "collector.address": addresses["collector"],  # nobody there: no event here needs it
        },
    )
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "all.toml").write_text(PURGE_EVERYTHING)
    box = write_maildir(tmp_path / "md", {f"{n}.test:2,S": mail(n) for n in range(MESSAGES)})
    for args in (
        ("import", str(box), "--mailbox", FOLDER),
        ("hold", "create", MATTER, "--custodian", CUSTODIAN, "--reason", "litigation"),
    ):
        done = vaultctl(home, *args, timeout=300)
        assert done.returncode == 0, done.stderr
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(vaultctl_argv("serve", home=home), stdout=out, stderr=subprocess.STDOUT)
    served = Served(home, addresses, proc, log)
    deadline = time.monotonic() + 60
    while not (home / DEFAULTS["service"]["socket_path"]).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"vaultctl serve did not start: {served.log()}")
        time.sleep(0.1)
    yield served
    for p in [*served.workers, proc]:
        p.send_signal(signal.SIGTERM)
    for p in [*served.workers, proc]:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
