"""An archive fed by the real handlers in-process, the way the broker's committer feeds it:
events in arrival order, each handled with a HandlerContext over a real Vault, ContentStore
and collector (talking to a real Cyrus), its entries checked as the committer checks a
worker's result (vault/ingest/broker/validate.py: a refusal is quarantined, so every test
that expects nothing quarantined also proves the check accepts what the handlers make),
recorded and committed; an event whose id the catalog knows is skipped; postponed events
are retried after the others."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from pathlib import Path

from tests.ingest.collector.conftest import start_collector
from vault.archive import Vault
from vault.config import DEFAULTS, Config
from vault.ingest.broker.validate import Invalid, ResultCheck
from vault.ingest.context import HandlerContext, Postpone, Quarantine
from vault.ingest.worker.handlers import handle
from vault.testing import cli


def hook_lines(server) -> list[bytes]:
    """The raw events the default external hook has written, in arrival order."""
    try:
        data = server.hook_events_path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n")[:-1] if line.strip()]


class LiveArchive:
    def __init__(self, home: Path, cyrus, directory=None):
        self.home = Path(home)
        self.cyrus = cyrus
        Vault.init(self.home)
        self.collector_server, self.collector = start_collector(cyrus, self.home)
        config_file = self.home / "config.toml"
        default = f'address = "{DEFAULTS["collector"]["address"]}"'
        text = config_file.read_text()
        assert default in text
        config_file.write_text(text.replace(default, f'address = "{self.collector_server.address}"'))
        self.config = Config.load(self.home)
        self.vault = Vault.open(self.config, writer=True)
        self.directory = directory
        self.check = ResultCheck(None if directory is None else lambda login: directory.resolve(login).id)
        self.quarantined: list[tuple[dict, str]] = []
        self.postponed: list[tuple[bytes, str]] = []
        self.handled: list[dict] = []
        self._seen = 0
        self.batch, self._uncommitted = 1, 0

    def context(self, event_id: str) -> HandlerContext:
        return HandlerContext(
            catalog=self.vault.catalog,
            store=self.vault.store,
            collector=self.collector,
            directory=self.directory,
            event_id=event_id,
            config=self.config,
        )

    def feed(self, raws: list[bytes], batch: int = 1) -> None:
        """Handle ``raws`` in order, committing every ``batch`` events (the committer batches)."""
        self.batch = batch
        waiting = [raw for raw, _ in self.postponed] + list(raws)
        self.postponed = []
        for _round in range(2):
            for raw in waiting:
                self._one(raw)
            self.vault.commit()
            waiting, self.postponed = [raw for raw, _ in self.postponed], []
            if not waiting:
                return
        self.postponed = [(raw, "still postponed") for raw in waiting]

    def _one(self, raw: bytes) -> None:
        event_id = hashlib.sha256(raw).hexdigest()
        if self.vault.catalog.has_event(event_id):
            return
        event = json.loads(raw)
        try:
            specs = handle(event, self.context(event_id))
        except Quarantine as e:
            self.quarantined.append((event, str(e)))
            return
        except Postpone as e:
            self.postponed.append((raw, str(e)))
            return
        try:
            specs = self.check(event_id, raw, specs, self.vault.catalog)
        except Invalid as e:
            self.quarantined.append((event, f"result refused: {e}"))
            return
        for spec in specs:
            self.vault.record(spec.kind, item=spec.item, data=spec.data, time=spec.time, actor=spec.actor)
        self._uncommitted += 1
        if self._uncommitted >= self.batch:
            self.vault.commit()
            self._uncommitted = 0
        self.handled.append(event)

    def feed_new_hook_events(self) -> list[dict]:
        """Handle whatever the Cyrus hook received since the last call."""
        lines = hook_lines(self.cyrus)
        new, self._seen = lines[self._seen :], len(lines)
        self.feed(new)
        return [json.loads(line) for line in new]

    def skip_hook_events(self) -> None:
        self._seen = len(hook_lines(self.cyrus))

    def log(self, *args: str) -> list[dict]:
        """``vaultctl log --json`` run as a user would, after closing our writer's batch."""
        done = cli.vaultctl(self.home, "log", "--json", *args, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    @contextlib.contextmanager
    def released(self):
        """Our writer lock released meanwhile (for vaultctl commands that write)."""
        self.vault.close()
        try:
            yield
        finally:
            self.vault = Vault.open(self.config, writer=True)

    def vaultctl(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a vaultctl command on this vault, our writer lock released meanwhile."""
        with self.released():
            return cli.vaultctl(self.home, *args, timeout=timeout)

    def close(self) -> None:
        self.collector.close()
        self.collector_server.stop()
        self.collector_server.collector.close()
        self.vault.close()


def wait_for_event(server, predicate, seconds: float = 20.0) -> list[dict]:
    """Wait until an event matching ``predicate`` has reached the hook."""
    return server.wait_hook_events(lambda events: any(predicate(e) for e in events), seconds)


def quiet(server, seconds: float = 0.5, limit: float = 20.0) -> None:
    """Wait until no new event has arrived for ``seconds`` (notifyd runs the hook serially,
    after the client got its answer)."""
    deadline = time.monotonic() + limit
    count, since = len(hook_lines(server)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_count = len(hook_lines(server))
        if now_count != count:
            count, since = now_count, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
