"""vaultctl init: create a vault (config with every default, signing key, empty ledger)."""

import click

from vault.cli.common import home_of


@click.command("init")
@click.pass_context
def command(ctx):
    """Create a vault in --home (or VAULT_HOME) and write its config.toml."""
    from vault.archive import Vault, VaultExists

    home = home_of(ctx)
    try:
        config = Vault.init(home)
    except VaultExists as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"vault created in {config.home}")
    click.echo(f"  config:  {config.home / 'config.toml'}")
    click.echo(
        f"  signing key: {config.path('ledger', 'key_path')} (keep it private; "
        f"{config.path('ledger', 'key_path')}.pub verifies exports)"
    )
