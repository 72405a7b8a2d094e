"""vaultctl status: what the vault holds, whether its daemons run, and what needs attention."""

import click

from vault.cli.common import call_service, host_config, open_vault, print_json, service_of


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, as_json):
    """Counts of folders, items, blobs and ledger entries; the latest signed checkpoint; the
    vault service, its workers, the last event, queue depth and lag, dead letters; on a
    mail-host home, the dealer's spool. Exits 1 when something is down (the service, a
    worker), listing what."""
    from vault.config import MAIL_HOST
    from vault.status import mail_host_status, problems, service_status, vault_status

    client = service_of(ctx)
    health = call_service(client, "status", {}) if client is not None else None
    config = None
    try:
        config = host_config(ctx, required=True)
        if config.role == MAIL_HOST:
            status = mail_host_status(config)
        else:
            with open_vault(ctx) as vault:
                status = vault_status(vault)
    except (OSError, click.ClickException) as e:
        if health is None:
            raise click.ClickException(
                f"cannot read the vault home, and no vault service answers: {e}"
            ) from None
        status, config = {"home": f"not readable by this user ({e.__class__.__name__})"}, None
    if config is None or config.role != MAIL_HOST:
        status.update(service_status(health))
    down = problems(config, status, health) if config is None or config.role != MAIL_HOST else []
    if as_json:
        print_json({**status, "problems": down})
    else:
        width = max(map(len, status))
        for key, value in status.items():
            click.echo(f"{key:>{width}}: {value}")
        for problem in down:
            click.echo(f"problem: {problem}", err=True)
    if down:
        ctx.exit(1)
