"""vaultctl rebuild: regenerate the derived views (catalog, store index) from ledger + blobs."""

import click

from vault.cli.common import load_config


@click.command("rebuild")
@click.pass_context
def command(ctx):
    """Throw the catalog away and replay the ledger into a new one; rebuild the blob
    location index from the store's own pack indexes."""
    from vault.rebuild import rebuild

    counts = rebuild(load_config(ctx))
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
