"""vaultctl ls: the archive's folders (current names, ids, message counts)."""

import click

from vault.cli.common import open_vault, print_json


@click.command("ls")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted folders.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, include_deleted, as_json):
    """List folders with their mailboxID and the number of messages present now."""
    with open_vault(ctx) as vault:
        folders = vault.catalog.folders(include_deleted=include_deleted)
    if as_json:
        print_json(folders)
        return
    for f in folders:
        deleted = f"  (deleted {f['deleted_at']})" if f["deleted_at"] else ""
        click.echo(f"{f['messages']:>7}  {f['name']:<40} {f['mailbox_id']}{deleted}")
