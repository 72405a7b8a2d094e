"""vaultctl status: what the vault holds and whether anything needs attention."""

import click

from vault.cli.common import open_vault, print_json


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, as_json):
    """Counts of folders, items, blobs and ledger entries; the latest signed checkpoint."""
    from vault.status import vault_status

    with open_vault(ctx) as vault:
        status = vault_status(vault)
    if as_json:
        print_json(status)
        return
    for key, value in status.items():
        click.echo(f"{key:>22}: {value}")
