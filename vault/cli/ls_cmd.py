"""vaultctl ls: the archive's folders (current names, ids, message counts) the caller may see."""

import click

from vault.cli.common import call_service, direct_caller, open_vault, print_json, refuse_here, service_of


@click.command("ls")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted folders.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, include_deleted, as_json):
    """List folders with their mailboxID and the number of messages present now: an admin's
    all, a reviewer's their matters' custodians', a user's their own."""
    from vault.access import mail_scope
    from vault.browse import folders as folders_in
    from vault.identity import Forbidden

    client = service_of(ctx)
    if client is not None:
        folders = call_service(client, "ls", {"all": include_deleted})
    else:
        with open_vault(ctx) as vault:
            try:
                scope = mail_scope(vault, direct_caller(vault, None, "list folders"), "list folders")
            except Forbidden as e:
                refuse_here(vault, e)
            folders = folders_in(vault, scope, include_deleted=include_deleted)
    if as_json:
        print_json(folders)
        return
    for f in folders:
        deleted = f"  (deleted {f['deleted_at']})" if f["deleted_at"] else ""
        gone = [
            f"{n} {what}"
            for n, what in ((f.get("purged"), "purged by retention"), (f.get("erased"), "erased"))
            if n
        ]
        removed = f"  ({', '.join(gone)})" if gone else ""
        click.echo(f"{f['messages']:>7}  {f['name']:<40} {f['mailbox_id']}{deleted}{removed}")
