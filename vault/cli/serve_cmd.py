"""vaultctl serve: the long-running service: scheduled retention sweeps (cron from config)."""

import click

from vault.cli.common import load_config


@click.command("serve")
@click.option("--once", is_flag=True, help="Catch up missed runs, then exit (for cron/systemd timers).")
@click.pass_context
def command(ctx, once):
    """Run the scheduled jobs ([policy] sweep_schedule, reconcile_schedule). Runs missed while
    the service was down are caught up once, coalesced, at start."""
    import logging
    import signal
    import threading

    from vault.service.schedule import scheduled_jobs
    from vault.service.scheduler import scheduler_from_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(ctx)
    scheduler = scheduler_from_config(config, scheduled_jobs(config))
    missed = scheduler.missed()
    if once:
        from vault.model import now

        for name in scheduler.job_names:
            if scheduler.runs.get(name).covered is None:
                scheduler.runs.set_covered(name, now())  # first sight: no downtime to make up
        for name in missed:
            scheduler.run(name)
        click.echo(f"caught up: {', '.join(missed) or 'nothing missed'}")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    scheduler.start()
    for name, when in scheduler.next_run_times().items():
        click.echo(f"{name}: next run {when}")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    scheduler.shutdown()
