"""vaultctl status: what the vault holds, whether its daemons run, and what needs attention."""

import click

from vault.cli.common import call_service, load_config, open_vault, print_json, service_of


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, as_json):
    """Counts of folders, items, blobs and ledger entries; the latest signed checkpoint; the
    vault service, its workers, the last event, queue depth and lag, dead letters. Exits 1
    when something is down (the service, a worker), listing what."""
    from vault.status import problems, service_status, vault_status

    client = service_of(ctx)
    health = call_service(client, "status", {}) if client is not None else None
    try:
        with open_vault(ctx) as vault:
            status = vault_status(vault)
        config = load_config(ctx)
    except (OSError, click.ClickException) as e:
        if health is None:
            raise click.ClickException(
                f"cannot read the vault home, and no vault service answers: {e}"
            ) from None
        status, config = {"home": f"not readable by this user ({e.__class__.__name__})"}, None
    status.update(service_status(health))
    down = problems(config, status, health)
    if as_json:
        print_json({**status, "problems": down})
    else:
        for key, value in status.items():
            click.echo(f"{key:>22}: {value}")
        for problem in down:
            click.echo(f"problem: {problem}", err=True)
    if down:
        ctx.exit(1)
