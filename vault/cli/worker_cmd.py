"""vaultctl worker: run event handlers for the broker (start as many as you like)."""

import click

from vault.cli.common import emit, json_option, load_config


@click.command("worker")
@click.option(
    "--processes", "-n", default=1, show_default=True, help="Worker processes to run from this command."
)
@json_option
@click.pass_context
def command(ctx, processes, as_json):
    """Take jobs from the broker ([broker] control_address / worker_address), fetch what
    events lack from the collector, store blobs, and hand the ledger entries back. With
    --json, the line saying what started is JSON on stderr."""
    import logging
    import multiprocessing
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    config = load_config(ctx)
    if processes < 1:
        raise click.BadParameter("at least 1", param_hint="--processes")
    started = {"worker": "started", "processes": processes, "broker": config["broker"]["worker_address"]}
    emit(as_json, started, f"worker: {processes} process(es) for {started['broker']}", err=True)
    if processes <= 1:
        _run(config)
        return
    children = [
        multiprocessing.get_context("spawn").Process(target=_run, args=(config,), daemon=False)
        for _ in range(processes)
    ]
    for child in children:
        child.start()

    def terminate(*_) -> None:
        for c in children:
            c.terminate()

    signal.signal(signal.SIGTERM, terminate)
    for child in children:
        child.join()


def _run(config) -> None:
    import signal

    from vault.curve.keys import CurveError
    from vault.ingest.worker.worker import Worker

    try:
        worker = Worker(config)
    except CurveError as e:
        raise click.ClickException(str(e)) from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: worker.stop())
    worker.run()
