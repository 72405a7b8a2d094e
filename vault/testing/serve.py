"""``vaultctl serve`` for the tests: point a home's config at a socket and free loopback ports
of its own, start the real service, wait until it answers, and stop it (SIGTERM, then kill)
and clean up afterwards.

The service's output goes to a log file beside its socket (never a pipe nobody reads, which
fills up and stalls a chatty service); :meth:`Served.wait_for_log` reads it.

    with start_service(home, web=True) as served:
        ... served.socket, served.port, served.hup(), served.wait_for_log("roles reloaded")
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from vault.config import _toml_value
from vault.testing.cli import vaultctl_argv
from vault.testing.net import free_port

BROKER_KEYS = ("dealer_bind", "worker_bind", "control_bind", "worker_address", "control_address")


def set_value(text: str, section: str, key: str, value: object) -> str:
    """``text`` (a config.toml) with ``key`` of ``[section]`` set to ``value`` (a Python str,
    int, bool or list; written as TOML). KeyError if the file has no such key."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            break
        if lines[i].startswith(f"{key} = "):
            lines[i] = f"{key} = {_toml_value(value)}"
            return "\n".join(lines) + "\n"
    raise KeyError(f"{section}.{key}")


def edit_config(home: Path, **sections: dict) -> None:
    """Set keys of ``home``'s config.toml: ``edit_config(home, roles={"admins": [...]})``."""
    config = home / "config.toml"
    text = config.read_text()
    for section, values in sections.items():
        for key, value in values.items():
            text = set_value(text, section, key, value)
    config.write_text(text)


def configure(home: Path, sockets: Path, *, web: bool = False) -> int | None:
    """Point ``home``'s service at ``sockets/vault.sock`` and its broker's routers (and, with
    ``web``, the web service) at free loopback ports; the web port, if any."""
    port = free_port() if web else None
    edit_config(
        home,
        service={"socket_path": str(sockets / "vault.sock")},
        broker={key: f"tcp://127.0.0.1:{free_port()}" for key in BROKER_KEYS},
        **({"web": {"listen": f"127.0.0.1:{port}"}} if web else {}),
    )
    return port


class Served:
    """A running ``vaultctl serve`` of ``home``: its socket, its web port (or None), its process."""

    def __init__(self, home: Path, sockets: Path, port: int | None, *, owns_sockets: bool):
        self.home, self.sockets, self.port = home, sockets, port
        self.socket = sockets / "vault.sock"
        self.log_path = sockets / "serve.log"
        self._owns = owns_sockets
        self._log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self.proc = subprocess.Popen(vaultctl_argv("serve", home=home), stdout=self._log, stderr=self._log)

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def _up(self) -> bool:
        if not self.socket.exists():
            return False
        if self.port is None:
            return True
        try:
            http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).connect()
            return True
        except OSError:
            return False

    def wait_ready(self, seconds: float = 90) -> None:
        """Until its socket exists (and its web port accepts); AssertionError with its log if
        it exits or does not come up in time."""
        deadline = time.monotonic() + seconds
        while not self._up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"vaultctl serve did not start:\n{self.log()}")
            time.sleep(0.1)

    def wait_for_log(self, text: str, seconds: float = 60, *, after: int = 0) -> str:
        """The first line of its log (from byte ``after`` on) holding ``text``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.log_path.read_bytes()[after:].decode(errors="replace").splitlines():
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the service never logged {text!r}; it logged:\n{self.log()}")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def hup(self, logged: str | None = None) -> str | None:
        """SIGHUP (re-read [roles]); with ``logged``, wait for the log line it brings."""
        mark = self.log_size()
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_for_log(logged, after=mark) if logged else None

    def stop(self, seconds: float = 60) -> int:
        """SIGTERM and wait (kill if it outlives ``seconds``); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(seconds)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        """Stop it and remove what was made for it (the socket directory, if made here)."""
        try:
            self.stop()
        finally:
            self._log.close()
            if self._owns:
                shutil.rmtree(self.sockets, ignore_errors=True)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_service(
    home: Path, *, sockets: Path | None = None, web: bool = False, seconds: float = 90
) -> Served:
    """``vaultctl serve`` of ``home`` (configured here: ``configure``), up and answering.
    ``sockets``: the directory for its socket and log (default: a new one under /tmp, short
    enough for a unix socket's path and reachable by other users, removed on close)."""
    owns = sockets is None
    where = Path(tempfile.mkdtemp(prefix="vault-serve-", dir="/tmp")) if sockets is None else sockets
    where.chmod(0o755)  # other users reach the socket (the home and the log stay private)
    try:
        served = Served(home, where, configure(home, where, web=web), owns_sockets=owns)
    except BaseException:
        if owns:
            shutil.rmtree(where, ignore_errors=True)
        raise
    try:
        served.wait_ready(seconds)
    except BaseException:
        served.close()
        raise
    return served
