"""The whole live-ingest pipeline as separate processes, for tests and benchmarks.

Cyrus (already running, in stream or socket mode) -> ``vaultctl dealer serve`` ->
``vaultctl serve`` (the vault service: broker, committer, local API; the component named
"broker") -> N x ``vaultctl worker`` <-> ``vaultctl collector``, all with one vault
home whose config points every component at free loopback ports. Each component can be
SIGKILLed and restarted on its own, which is what the nothing-lost tests do.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from vault.archive import Vault
from vault.config import CONFIG_NAME, DEFAULTS, render
from vault.testing.cli import REPO, vaultctl, vaultctl_argv
from vault.testing.net import free_port


def _listening(address: str) -> bool:
    host, port = address.rsplit("//", 1)[1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


class Component:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict, cpus: set[int] | None = None):
        self.name = name
        self.cpus = cpus
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Component:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if (cpus := self.cpus) else None,
        )
        log.close()
        return self

    def _running(self) -> subprocess.Popen | None:
        """The process, while it runs."""
        return self.proc if self.proc is not None and self.proc.poll() is None else None

    @property
    def alive(self) -> bool:
        return self._running() is not None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last commit, no goodbye."""
        proc = self._running()
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def stop(self, timeout: float = 30) -> None:
        proc = self._running()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Pipeline:
    """``Pipeline(home, cyrus, spool_dir, workers=2).start()``; ``spool_dir`` must be
    writable by the user Cyrus runs as (the dealer's socket lives beside Cyrus's).

    ``cpus``: pin components to CPUs, by name ("dealer", "collector", "broker" = the vault
    service, "worker0", ...) or role ("worker" for every worker); unnamed ones run anywhere.
    ``settings``: config values over the defaults, by section (``{"dealer": {"sync": False}}``)."""

    def __init__(
        self,
        home: Path,
        cyrus,
        spool_dir: Path,
        *,
        workers: int = 2,
        mode: str | None = None,
        cpus: dict[str, set[int]] | None = None,
        settings: dict[str, dict] | None = None,
    ):
        self.home = Path(home)
        self.cpus = dict(cpus or {})
        self.settings = settings or {}
        self.cyrus = cyrus
        self.spool_dir = Path(spool_dir)
        self.mode = mode or cyrus.mode
        self.worker_count = workers
        self.components: dict[str, Component] = {}
        self.logs = self.home / "logs"
        ports = [free_port() for _ in range(4)]
        self.addresses = {
            name: f"tcp://127.0.0.1:{port}"
            for name, port in zip(("dealer", "worker", "control", "collector"), ports)
        }
        self._write_config()
        self.env = {**os.environ, "VAULT_COLLECTOR_PASSWORD": cyrus.admin_password, "PYTHONUNBUFFERED": "1"}

    def _write_config(self) -> None:
        values = copy.deepcopy(DEFAULTS)
        for section, changes in self.settings.items():
            values[section].update(changes)
        a = self.addresses
        values["broker"].update(
            dealer_bind=a["dealer"],
            worker_bind=a["worker"],
            control_bind=a["control"],
            worker_address=a["worker"],
            control_address=a["control"],
            worker_timeout_seconds=5.0,
            postpone_seconds=1.0,
        )
        values["dealer"].update(
            mode=self.mode,
            broker=a["dealer"],
            spool_path=str(self.spool_dir),
            listen_path=str(self.cyrus.notify_target),
            socket_owner="cyrus",
        )
        values["collector"].update(
            bind=a["collector"],
            address=a["collector"],
            imapd_conf=str(self.cyrus.config_path),
            imap_port=self.cyrus.imap_port,
            imap_admin=self.cyrus.admin,
            timeout_seconds=10.0,
        )
        Vault.init(self.home)  # keys, ledger, catalog; then our ports and paths
        self._values = values
        self._save_config()
        self.logs.mkdir(exist_ok=True)

    def configure(self, section: str, **changes) -> None:
        """Change config values of the running pipeline's home (read by each command)."""
        self._values[section].update(changes)
        self._save_config()

    def _save_config(self) -> None:
        # only what differs from the defaults: a checkout that knows fewer keys (bench
        # --b-tree) reads the same config, with its own defaults for the rest
        changed = {
            section: {key: value for key, value in table.items() if value != DEFAULTS[section].get(key, ())}
            for section, table in self._values.items()
        }
        text = render({section: table for section, table in changed.items() if table})
        (self.home / CONFIG_NAME).write_text(text, encoding="utf-8")

    def vaultctl(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return vaultctl(self.home, *args, timeout=timeout, cwd=REPO)

    def _component(self, name: str, *args: str) -> Component:
        argv = vaultctl_argv(*args, home=self.home)
        pin = self.cpus.get(name, self.cpus.get(name.rstrip("0123456789")))
        component = Component(name, argv, self.logs / f"{name}.log", self.env, cpus=pin)
        self.components[name] = component
        return component

    # ------------------------------------------------------------ starting

    def start(self) -> Pipeline:
        self.start_collector()
        self.start_broker()
        for i in range(self.worker_count):
            self.start_worker(i)
        self.start_dealer()
        return self

    def _wait(self, what: str, predicate, component: Component, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if not component.alive:
                code = component.proc.returncode if component.proc is not None else "(never started)"
                raise RuntimeError(f"{what} exited {code}:\n{component.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {seconds} s:\n{component.log()[-3000:]}")
            time.sleep(0.05)

    def start_collector(self) -> None:
        c = self._component("collector", "collector").start()
        self._wait("the collector", lambda: _listening(self.addresses["collector"]), c)

    def start_broker(self) -> None:
        c = self._component("broker", "serve").start()
        self._wait("the vault service", lambda: _listening(self.addresses["control"]), c)
        self._wait("the vault service's API", (self.home / DEFAULTS["service"]["socket_path"]).exists, c)

    def start_worker(self, i: int) -> None:
        self._component(f"worker{i}", "worker").start()

    def start_dealer(self) -> None:
        c = self._component("dealer", "dealer", "serve").start()
        self._wait("the dealer", lambda: "dealer ready" in c.log(), c)

    def restart(self, name: str) -> None:
        self.components[name].stop()
        {"collector": self.start_collector, "broker": self.start_broker, "dealer": self.start_dealer}.get(
            name, lambda: self.start_worker(int(name[6:]))
        )()

    def kill(self, name: str) -> None:
        self.components[name].kill()

    def stop(self) -> None:
        for name in [
            "dealer",
            *[n for n in self.components if n.startswith("worker")],
            "broker",
            "collector",
        ]:
            if name in self.components:
                self.components[name].stop()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ watching

    def job_counts(self) -> dict[str, int]:
        path = self.home / DEFAULTS["broker"]["jobs_path"]
        if not path.exists():
            return {}
        db = sqlite3.connect(str(path), timeout=30)
        try:
            return dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        except sqlite3.OperationalError:
            return {}
        finally:
            db.close()

    def spooled(self) -> int:
        """Events in the spool, and hook logs not yet fully spooled (external mode)."""
        new = self.spool_dir / "new"
        waiting = len(os.listdir(new)) if new.exists() else 0
        logs = list(self.spool_dir.glob("hook*.log")) if self.spool_dir.exists() else []
        return waiting + sum(1 for log in logs if _size(log) > 0)

    def settled(self) -> bool:
        """Nothing waiting in the spool, nothing PENDING or BUSY at the broker."""
        counts = self.job_counts()
        return self.spooled() == 0 and not counts.get("PENDING") and not counts.get("BUSY")

    def wait_first_sync(self, seconds: float = 120) -> None:
        """Until the vault service's first sync (``reconcile --all`` at its first start) has
        completed: what it archives meanwhile races the live events (a message the sync got
        to first is recorded as reconciled, and its event's append is dropped)."""
        path = self.home / "reconcile-state.json"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text()).get("first_sync"):
                return
            time.sleep(0.2)
        raise AssertionError(f"no first sync within {seconds} s:\n{self.components['broker'].log()[-3000:]}")

    def wait_settled(self, seconds: float = 120, quiet: float = 1.0) -> None:
        """Until settled and still settled ``quiet`` seconds later (events may trickle in)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.settled():
                time.sleep(quiet)
                if self.settled():
                    return
            time.sleep(0.1)
        logs = "\n".join(f"--- {n}\n{c.log()[-2000:]}" for n, c in self.components.items())
        raise AssertionError(
            f"pipeline not settled within {seconds} s: spool {self.spooled()}, "
            f"jobs {self.job_counts()}\n{logs}"
        )


def _size(path: Path) -> int:
    """A hook log's size; 0 once the dealer has spooled and removed it (between list and stat)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
