"""vaultctl log: the per-item changelog (ledger entries) of a folder or one item."""

import click

from vault.cli.common import call_service, direct_caller, open_vault, print_json, refuse_here, service_of


def _summary(entry: dict) -> str:
    d = entry.get("data") or {}
    kind = entry["kind"]
    if "flags" in d and kind.startswith("flags."):
        return " ".join(d["flags"])
    if kind.startswith("message.") and "blob" in d:
        return f"{d['blob'][:19]}… {d.get('size', '?')} bytes flags={' '.join(d.get('flags', []))}"
    if kind == "retention.purged":  # a sweep's purge or an erasure's: say which
        from vault.store.catalog import ERASURE, purge_cause

        how, rule, request = purge_cause(d)
        if how == ERASURE:
            return f"erased by erasure request {request}: {d.get('reason', '')}"
        return f"purged by retention rule {rule}: {d.get('reason', '')}"
    if kind.startswith("folder."):
        return " ".join(f"{k}={v}" for k, v in d.items())
    return " ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, (dict, list)))


@click.command("log")
@click.option("--mailbox", "-m", help="Folder name (any name it ever had).")
@click.option("--item", "item", help="Item id MAILBOXID:UIDVALIDITY:UID.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailbox, item, as_json):
    """Print the changelog: every ledger entry about the folder or item, oldest first. Users
    see their own folders', reviewers their matters' (the items within the matters' dates)."""
    from vault.access import mail_scope
    from vault.browse import NotFound, changelog
    from vault.identity import Forbidden

    mailbox, item = mailbox or None, item or None  # an empty value is no value
    if bool(mailbox) == bool(item):
        raise click.UsageError("give exactly one of --mailbox or --item")
    client = service_of(ctx)
    if client is not None:
        entries = call_service(client, "log", {"mailbox": mailbox, "item": item})
    else:
        with open_vault(ctx) as vault:
            action = f"read the changelog of {mailbox or item}"
            try:
                scope = mail_scope(vault, direct_caller(vault, None, action), action)
                entries = [entry.to_json() for entry in changelog(vault, scope, mailbox=mailbox, item=item)]
            except Forbidden as e:
                refuse_here(vault, e)
            except NotFound as e:
                raise click.ClickException(str(e)) from None
    if as_json:
        print_json(entries)
        return
    for row in entries:
        click.echo(
            f"{row['seq']:>8}  {row['time']}  {row['kind']:<18} {row.get('item') or '-':<40} "
            f"{row.get('actor') or '-':<10} {_summary(row)}"
        )
