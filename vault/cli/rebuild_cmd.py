"""vaultctl rebuild: regenerate the derived views (catalog, store index) from ledger + blobs."""

import click

from vault.cli.common import call_service, emit, json_option, load_config, service_of


@click.command("rebuild")
@json_option
@click.pass_context
def command(ctx, as_json):
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
    emit(as_json, counts, ", ".join(f"{k}: {v}" for k, v in counts.items()))
