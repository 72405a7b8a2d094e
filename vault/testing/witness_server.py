"""A cosigning witness as an operator runs it, for tests: ``vaultctl witness serve`` in its own
process, on a unix socket, its directory (key, state) wherever the caller says: never inside
the vault home it witnesses. Its directory is made and trusts ledgers through the Python API
(vault.witness.server), as ``vaultctl witness init`` and ``trust`` do."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from vault.testing.cli import vaultctl, vaultctl_argv
from vault.witness.server import init_witness, trust


class WitnessServer:
    def __init__(self, directory: Path, name: str = "witness.test/w1"):
        self.dir = Path(directory)
        self.name = name
        # a unix socket path has room for 107 bytes: pytest's directories are longer
        self._sockdir = Path(tempfile.mkdtemp(prefix="vault-witness-", dir="/tmp"))
        self.socket = self._sockdir / "w.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        if not (self.dir / "key").exists():
            init_witness(self.dir, name)

    @property
    def url(self) -> str:
        return f"unix:{self.socket}"

    @property
    def key(self) -> str:
        """Its cosigner verifier key (key.pub)."""
        return (self.dir / "key.pub").read_text().strip()

    @property
    def spec(self) -> str:
        """The ``[witness] cosigners`` entry for it."""
        return f"{self.url} {self.key}"

    def trust(self, ledger_key_file: Path) -> None:
        trust(self.dir, Path(ledger_key_file).read_text())

    def start(self) -> WitnessServer:
        argv = vaultctl_argv("witness", "serve", str(self.dir), "--listen", self.url)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"witness did not start: {line!r} {err.decode()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def status(self) -> dict:
        return json.loads(vaultctl(None, "witness", "status", str(self.dir), "--json", check=True).stdout)

    def __enter__(self) -> WitnessServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self._sockdir, ignore_errors=True)
