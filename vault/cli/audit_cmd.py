"""vaultctl audit: who searched, exported and restored what, from the ledger."""

import click

from vault.cli.common import call_service, open_vault, print_json, service_of


@click.command("audit")
@click.option("--since", help="ISO 8601 time with zone; only entries from then on.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, since, as_json):
    """List audit-trail entries (searches, exports, restores, holds, purges, erasures, imports,
    refusals)."""
    from vault.entries import AUDIT_TRAIL
    from vault.model import format_time, parse_time

    try:
        cutoff = format_time(parse_time(since)) if since else ""
    except ValueError as bad:
        raise click.BadParameter(str(bad), param_hint="--since") from None
    client = service_of(ctx)
    if client is not None:
        entries = call_service(client, "audit.list", {"since": cutoff or None})
    else:
        with open_vault(ctx) as vault:
            entries = [
                e.to_json() for e in vault.ledger.entries() if e.kind in AUDIT_TRAIL and e.time >= cutoff
            ]
    if as_json:
        print_json(entries)
        return
    for e in entries:
        detail = " ".join(f"{k}={v}" for k, v in (e.get("data") or {}).items() if v not in (None, ""))
        click.echo(f"{e['seq']:>8}  {e['time']}  {e.get('actor') or '-':<12} {e['kind']:<18} {detail}")
