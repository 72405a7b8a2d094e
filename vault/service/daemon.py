"""``vaultctl serve``: the one process that owns the vault home while it runs.

It holds the vault's writer (the broker's committer thread), runs the broker's routers for
live ingest (dealers, workers), the scheduled jobs (sweeps, reconciliation), and the local API
on a unix socket that every other ``vaultctl`` command talks to while the service runs. Writes
from any of them go through the one writer (:meth:`Service.write`), so none is refused for a
busy vault. Workers, dealers and collectors stay separate processes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from vault.config import Config, ConfigError
from vault.curve.guard import reload as reload_keys
from vault.identity import ADMIN, Caller
from vault.ingest.broker.broker import Broker
from vault.service import ops
from vault.service.api import LocalApi
from vault.service_client import socket_path

log = logging.getLogger("vault.service")

SCHEDULER = Caller("vault-scheduler", "vault-scheduler", frozenset({ADMIN}))
SYNC_LOG = Caller("vault-synclog", "vault-synclog", frozenset({ADMIN}))
# How often the collector is asked for Cyrus's sync log (vault/ingest/cyrus/sync_log.py);
# and while it cannot answer, or the server keeps no log for vault.
SYNC_LOG_SECONDS, SYNC_LOG_IDLE_SECONDS = 1.0, 30.0
# A batch waits until no event reached the broker for QUIET seconds (at most WAIT): live
# ingest records a change with its detail (who, which session); the log only what it missed.
SYNC_LOG_QUIET_SECONDS, SYNC_LOG_WAIT_SECONDS = 2.0, 30.0


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.broker: Broker | None = None  # made on its own thread: its SQLite job store lives there
        self.api = LocalApi(self, socket_path(config))
        self._broker_error: BaseException | None = None
        self.reload = threading.Event()  # set by SIGHUP: re-read [roles] from config.toml

    def reload_roles(self) -> None:
        """Re-read ``[roles]`` from the home's config.toml and use it from the next request on;
        a config that does not load leaves the roles as they were (and says why)."""
        try:
            fresh = Config.load(self.config.home)
        except ConfigError as e:
            log.error("roles not reloaded: %s", e)
            return
        roles = fresh["roles"]
        self.config.values["roles"] = roles  # one assignment: a request sees the old or the new
        log.info("roles reloaded: %s", "; ".join(f"{k} = {', '.join(v) or '-'}" for k, v in roles.items()))

    def write(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(vault)`` with the vault's one writer and return its result."""
        if self.broker is None:
            raise RuntimeError("the vault service's writer is not running")
        return self.broker.committer.call(fn)

    def run_op(self, name: str, caller: Caller, params: dict) -> Any:
        """One operation (vault/service/ops.py, or web_ops.py for the web pages) for a caller
        the web service authenticated; a refusal is recorded (``access.refused``) and raised."""
        from vault.identity import Forbidden
        from vault.service.web_ops import WEB_OPS

        op = ops.OPS.get(name) or WEB_OPS.get(name)
        if op is None:
            raise LookupError(f"no operation {name!r}")
        try:
            return op(self, caller, params)
        except Forbidden as e:
            if not getattr(e, "recorded", False):
                ops.refused(self, caller, name, e)
                e.recorded = True  # type: ignore[attr-defined]
            raise

    def health(self) -> dict:
        if self.broker is None:
            return {"broker": "not running"}
        return {"broker": "running", **self.broker.health()}

    def jobs(self) -> dict[str, Callable[[], object]]:
        """The scheduled jobs, run as the scheduler (an admin) through the one writer."""
        return {
            "sweep": lambda: ops.sweep(self, SCHEDULER, {}),
            "reconcile": lambda: ops.reconcile(self, SCHEDULER, {}),
        }

    def run(self, stop: threading.Event, ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` is set. Raises VaultBusy when another process writes the vault."""
        from vault.service.scheduler import scheduler_from_config

        started = threading.Event()
        thread = threading.Thread(target=self._run_broker, args=(started, stop), name="broker", daemon=True)
        thread.start()
        while not started.wait(0.1):
            if not thread.is_alive():
                break
        if self._broker_error is not None:
            raise self._broker_error
        scheduler = scheduler_from_config(self.config, self.jobs())
        scheduler.start()
        threading.Thread(target=self._first_sync, name="first-sync", daemon=True).start()
        threading.Thread(target=self._follow_sync_log, args=(stop,), name="sync-log", daemon=True).start()
        try:
            asyncio.run(self._serve_api(stop, ready))
        finally:
            scheduler.shutdown()
            if self.broker is not None:
                self.broker.stop()
            thread.join(60)

    def _first_sync(self) -> None:
        """At the first start on a home that never synced the whole server (reconcile-state.json
        says when one completed): ``reconcile --all``, once the collector answers a LIST;
        asked outside the writer, so a mail host that is not there holds nothing up."""
        from vault.ingest.collector.client import CollectorClient
        from vault.ingest.reconcile import SyncState

        if SyncState.of(self).first_sync is not None:
            return
        try:
            with CollectorClient.from_config(self.config) as client:
                count = len(client.mailboxes())
            log.info("first sync: %d mailbox(es) on the server", count)
            reports = ops.reconcile(self, SCHEDULER, {"all": True})
        except Exception as e:  # the service runs on; the next start, or reconcile --all, does it
            log.warning("first sync of the mail server not done (%s): 'vaultctl reconcile --all' does it", e)
            return
        log.info("first sync done: %d mailbox(es) reconciled", len(reports))

    def _follow_sync_log(self, stop: threading.Event) -> None:
        """Reconcile what each batch of Cyrus's sync log names (through the collector), then
        let the collector remove the batch: a batch is removed only once its reconciliation
        is committed, so a service killed half-way reconciles it again at its next start."""
        from vault.ingest.collector.client import CollectorClient

        wait, warned = SYNC_LOG_SECONDS, False
        while not stop.wait(wait):
            try:
                with CollectorClient.from_config(self.config) as client:
                    batch = client.sync_log()
                    read_at = time.time()
                    if not batch.get("configured"):
                        wait = SYNC_LOG_IDLE_SECONDS
                        continue
                    wait = SYNC_LOG_SECONDS
                    if batch.get("token") is None:
                        continue
                    if batch["mailboxes"] or batch["users"]:
                        self._events_quiet(stop, read_at)
                        params = {"mailboxes": batch["mailboxes"], "users": batch["users"]}
                        reports = ops.reconcile(self, SYNC_LOG, params)
                        changed = [r for r in reports if r["differences"]]
                        log.info(
                            "sync log: %d line(s), %d mailbox(es) reconciled, %d changed",
                            batch["lines"],
                            len(reports),
                            len(changed),
                        )
                    client.sync_done(batch["token"])
                    warned = False
            except Exception as e:  # the log keeps its lines: the next round takes them
                if not warned:
                    log.warning("sync log not followed (%s); retrying", e)
                    warned = True
                wait = SYNC_LOG_IDLE_SECONDS if "no answer" in str(e) else SYNC_LOG_SECONDS

    def _events_quiet(self, stop: threading.Event, read_at: float) -> None:
        """Until no event has come for a while, neither since the batch was read at
        ``read_at``, and every job due is committed (or for at most SYNC_LOG_WAIT_SECONDS): a
        reconciliation must not record what an event on its way records next (an expunge
        before the flag change that came first). Cyrus logs a change as it emits its event, so
        the event may still be in the dealer when its log line is read: quiet is counted from
        the later of the last event and the read, never from an event before the change."""
        from vault.ingest.broker.jobs import unsettled

        jobs = self.config.path("broker", "jobs_path")
        deadline = time.monotonic() + SYNC_LOG_WAIT_SECONDS
        while time.monotonic() < deadline and not stop.is_set():
            last = self.broker.last_event_at if self.broker is not None else None
            since = max(last or 0.0, read_at)
            if time.time() - since >= SYNC_LOG_QUIET_SECONDS and not unsettled(jobs):
                return
            stop.wait(0.2)

    def _run_broker(self, started: threading.Event, stop: threading.Event) -> None:
        try:
            self.broker = Broker(self.config)
            self.broker.run(ready=started)
        except BaseException as e:  # VaultBusy, a port in use: the service must not run half
            self._broker_error = e
            stop.set()
            started.set()

    async def _serve_api(self, stop: threading.Event, ready: Callable[[], None] | None) -> None:
        _remove_stale_exports(self.config)
        await self.api.start()
        web = None
        try:
            if self.config["web"]["listen"]:  # the web service (vault/web/app.py)
                from vault.web.app import start as start_web

                web = await start_web(self.config, self.write, self.run_op)
            if ready is not None:
                ready()
            while not stop.is_set():
                if self.reload.is_set():
                    self.reload.clear()
                    self.reload_roles()
                    reload_keys()  # the CURVE allow-lists of dealers and workers (vault/curve/)
                await asyncio.sleep(0.1)
        finally:
            if web is not None:
                await web.cleanup()
            await self.api.stop()


def _remove_stale_exports(config: Config) -> None:
    """Export directories a service that died left in the home (vault/service/ops.py export)."""
    import shutil

    for path in config.home.glob(f"{ops.EXPORT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
