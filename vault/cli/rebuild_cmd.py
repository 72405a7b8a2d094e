"""vaultctl rebuild: regenerate the derived views (catalog, store index) from ledger + blobs."""

import click

from vault.cli.common import call_service, load_config, service_of


@click.command("rebuild")
@click.pass_context
def command(ctx):
    """Throw the catalog away and replay the ledger into a new one; rebuild the blob
    location index from the store's own pack indexes. Needs the home to itself: the vault
    service refuses it while it runs (stop it first)."""
    from vault.archive import VaultBusy
    from vault.rebuild import rebuild

    client = service_of(ctx)
    if client is not None:  # refused, saying why (and audited when the caller is no admin)
        call_service(client, "rebuild", {})
    try:
        counts = rebuild(load_config(ctx))
    except VaultBusy as e:
        raise click.ClickException(str(e)) from None
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
