"""vaultctl serve: the vault service: the one process that owns the home while it runs (live
ingest's broker and committer, the scheduled sweeps and reconciliation, the local API every
other vaultctl command talks to)."""

import click

from vault.cli.common import emit, json_option, load_config


@click.command("serve")
@click.option(
    "--once", is_flag=True, help="Catch up missed scheduled runs, then exit (for cron/systemd timers)."
)
@json_option
@click.pass_context
def command(ctx, once, as_json):
    """Run the vault service until SIGTERM/SIGINT (SIGHUP re-reads [roles] from config.toml):
    the broker's routers ([broker] *_bind) and its
    committer (the vault's one writer), the scheduled jobs ([policy] sweep_schedule,
    reconcile_schedule; runs missed while the service was down are caught up once), and the
    local API on [service] socket_path. With --json, its ready and stopped lines are JSON
    objects on stderr (and --once prints what it caught up as JSON)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(ctx)
    if once:
        _catch_up(config, as_json)
        return
    import signal
    import threading

    from vault.archive import VaultBusy
    from vault.curve.keys import CurveError
    from vault.service.daemon import Service

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stop.set())
    service = Service(config)
    signal.signal(signal.SIGHUP, lambda *a: service.reload.set())  # re-read [roles], the CURVE allow-lists
    try:
        service.run(stop, ready=lambda: _ready(service, as_json))
    except (VaultBusy, CurveError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:  # a port or the socket path in use
        raise click.ClickException(f"cannot start the vault service: {e}") from None
    if service.broker is not None:
        s = service.broker.stats
        counts = {"events": s.events, "done": s.done, "failed": s.failed}
        text = f"vault service stopped: {s.events} event(s) in, {s.done} done, {s.failed} failed"
        emit(as_json, {"service": "stopped", **counts}, text, err=True)


def _ready(service, as_json: bool) -> None:
    import os

    found = {"service": "ready", "pid": os.getpid(), "socket": str(service.api.path)}
    emit(as_json, found, f"vault service: API on {service.api.path}", err=True)


def _catch_up(config, as_json: bool) -> None:
    from vault.model import now
    from vault.service.schedule import scheduled_jobs
    from vault.service.scheduler import scheduler_from_config

    scheduler = scheduler_from_config(config, scheduled_jobs(config))
    missed = scheduler.missed()
    for name in scheduler.job_names:
        if scheduler.runs.get(name).covered is None:
            scheduler.runs.set_covered(name, now())  # first sight: no downtime to make up
    for name in missed:
        scheduler.run(name)
    emit(as_json, {"caught_up": list(missed)}, f"caught up: {', '.join(missed) or 'nothing missed'}")
