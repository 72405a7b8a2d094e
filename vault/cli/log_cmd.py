"""vaultctl log: the per-item changelog (ledger entries) of a folder or one item."""

import click

from vault.cli.common import open_vault, print_json


def _summary(entry) -> str:
    d = entry.data or {}
    if "flags" in d and entry.kind.startswith("flags."):
        return " ".join(d["flags"])
    if entry.kind.startswith("message.") and "blob" in d:
        return f"{d['blob'][:19]}… {d.get('size', '?')} bytes flags={' '.join(d.get('flags', []))}"
    if entry.kind.startswith("folder."):
        return " ".join(f"{k}={v}" for k, v in d.items())
    return " ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, (dict, list)))


@click.command("log")
@click.option("--mailbox", "-m", help="Folder name (any name it ever had).")
@click.option("--item", "item", help="Item id MAILBOXID:UIDVALIDITY:UID.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailbox, item, as_json):
    """Print the changelog: every ledger entry about the folder or item, oldest first."""
    if bool(mailbox) == bool(item):
        raise click.UsageError("give exactly one of --mailbox or --item")
    with open_vault(ctx) as vault:
        if mailbox:
            mailbox_id = vault.catalog.folder_id(mailbox)
            if mailbox_id is None:
                raise click.ClickException(f"no folder named {mailbox!r} in the archive")
            seqs = vault.catalog.log_seqs(mailbox_id=mailbox_id)
        else:
            seqs = vault.catalog.log_seqs(item=item)
            if not seqs:
                raise click.ClickException(f"no ledger entries for item {item!r}")
        entries = [vault.ledger.get(s) for s in seqs]
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    for e in entries:
        click.echo(
            f"{e.seq:>8}  {e.time}  {e.kind:<18} {e.item or '-':<40} {e.actor or '-':<10} {_summary(e)}"
        )
