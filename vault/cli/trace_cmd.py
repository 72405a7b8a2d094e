"""vaultctl trace: a message's path through the mail system, and where the archive holds it."""

import click

from vault.cli.common import load_config, print_json


@click.command("trace")
@click.argument("target", required=False)
@click.option("--user", "user", help="List all mail from or to this address.")
@click.option("--since", help="ISO time with zone: hops from then on.")
@click.option("--until", help="ISO time with zone: hops until then.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, target, user, since, until, as_json):
    """TARGET is a Message-ID, a queue ID or an address. Hops come from 'vaultctl maillog
    import'; archived copies (mailbox, item id) from the vault."""
    from vault.archive import Vault
    from vault.model import format_time, parse_time
    from vault.trace.hops import MaillogStore
    from vault.trace.tracer import Tracer

    if not target and not user:
        raise click.UsageError("give a Message-ID, queue ID or address, or --user ADDRESS")
    try:
        since = format_time(parse_time(since)) if since else None
        until = format_time(parse_time(until)) if until else None
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    config = load_config(ctx)
    store = MaillogStore.from_config(config)
    try:
        with Vault.open(config, catch_up=False) as vault:
            tracer = Tracer(store, vault)
            routes = tracer.user(user, since, until) if user else tracer.trace(target, since, until)
    finally:
        store.close()
    if as_json:
        print_json([r.to_json() for r in routes])
        return
    if not routes:
        raise click.ClickException(f"nothing in the imported mail logs for {user or target}")
    if user:
        for r in routes:
            s = r.summary()
            outcome = ", ".join(f"{d['to']} {d['status']}" for d in s["deliveries"]) or "no delivery logged"
            archived = f"  archived: {', '.join(a['mailbox'] for a in r.archived)}" if r.archived else ""
            click.echo(
                f"{(s['first_seen'] or '')[:19]}  from {s['from'] or '?'}  "
                f"{', '.join('<' + m + '>' for m in s['message_ids'])}  {outcome}{archived}"
            )
        click.echo(f"{len(routes)} message(s)")
        return
    for r in routes:
        _print_route(r)


def _print_route(route) -> None:
    s = route.summary()
    click.echo(
        f"== {', '.join('<' + m + '>' for m in s['message_ids']) or '(no Message-ID)'}  "
        f"queue IDs {', '.join(s['queue_ids'])}"
    )
    for h in route.hops:
        what = h.status or ""
        who = (
            f"to=<{h.to}>"
            if h.to
            else f"from=<{h.from_}>"
            if h.from_ is not None
            else f"message-id=<{h.message_id}>"
            if h.message_id
            else ""
        )
        extra = " ".join(
            x
            for x in (
                f"relay={h.relay}" if h.relay else "",
                f"dsn={h.dsn}" if h.dsn else "",
                f"delay={h.delay:g}s" if h.delay is not None else "",
                f"-> {h.next_queue_id}" if h.next_queue_id else "",
                f"session={h.session_id}" if h.session_id else "",
            )
            if x
        )
        click.echo(
            f"  {h.time[:23]}  {h.host:<10} {h.program:<16} {h.queue_id or '-':<12} {what:<13} {who} {extra}".rstrip()
        )
    for a in route.archived:
        state = " (expunged)" if a["expunged_at"] else ""
        click.echo(f"  archived: {a['mailbox']}  item {a['item']}{state}  [{a['linked_by']}]")
    if not route.archived:
        click.echo("  archived: no copy in the vault")
