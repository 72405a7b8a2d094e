"""vaultctl status: what the vault holds and whether anything needs attention."""

import click

from vault.cli.common import host_config, open_vault, print_json


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, as_json):
    """Counts of folders, items, blobs and ledger entries; the latest signed checkpoint; the
    broker's queue and the dealer's spool where they are on this host. On a mail-host home:
    the dealer's spool."""
    from vault.config import MAIL_HOST
    from vault.status import mail_host_status, vault_status

    config = host_config(ctx, required=True)
    if config.role == MAIL_HOST:
        status = mail_host_status(config)
    else:
        with open_vault(ctx) as vault:
            status = vault_status(vault)
    if as_json:
        print_json(status)
        return
    width = max(map(len, status))
    for key, value in status.items():
        click.echo(f"{key:>{width}}: {value}")
