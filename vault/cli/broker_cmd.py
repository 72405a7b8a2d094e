"""vaultctl broker: the live-ingest queue and the vault's one writer while it runs."""

import click

from vault.cli.common import load_config


@click.command("broker")
@click.pass_context
def command(ctx):
    """Take events from dealers ([broker] dealer_bind), hand them to workers, commit their
    results. Stops on SIGTERM/SIGINT after committing what the workers finished."""
    import logging
    import signal

    from vault.archive import VaultBusy
    from vault.ingest.broker.broker import Broker
    from vault.policy.follow import after_commit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(levelname)s %(message)s")
    broker = Broker(load_config(ctx), after_commit=after_commit)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: broker.stop())
    try:
        broker.run()
    except VaultBusy as e:
        raise click.ClickException(str(e)) from None
    s = broker.stats
    click.echo(
        f"broker stopped: {s.events} event(s) in, {s.done} done, {s.failed} failed, "
        f"{s.postponed} postponement(s), {s.workers_lost} worker(s) lost",
        err=True,
    )
