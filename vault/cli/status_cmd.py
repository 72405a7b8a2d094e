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
    with open_vault(ctx) as vault:
        status = vault_status(vault)
    status.update(service_status(health))
    down = problems(load_config(ctx), status, health)
    if as_json:
        print_json({**status, "problems": down})
    else:
        for key, value in status.items():
            click.echo(f"{key:>22}: {value}")
        for problem in down:
            click.echo(f"problem: {problem}", err=True)
    if down:
        ctx.exit(1)
