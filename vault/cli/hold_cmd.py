"""vaultctl hold: legal holds (matters) that preserve mail regardless of retention."""

import click

from vault.cli.common import call_service, open_vault, print_json, service_of


@click.group("hold")
def command():
    """Place, list, show and release legal holds. A hold always wins over retention."""


@command.command("create")
@click.argument("matter")
@click.option(
    "--custodian", "custodians", multiple=True, required=True, help="User whose mail is held (repeatable)."
)
@click.option("--query", help="Only mail matching this search query.")
@click.option("--from", "date_from", help="Internal date from (YYYY-MM-DD or ISO time).")
@click.option("--to", "date_to", help="Internal date to (a bare day covers the whole day).")
@click.option(
    "--reviewer", "reviewers", multiple=True, help="Who may search and export this matter (repeatable)."
)
@click.option("--reason", required=True)
@click.option("--actor", help="Who places it (default: the OS user).")
@click.pass_context
def create(ctx, matter, custodians, query, date_from, date_to, reviewers, reason, actor):
    from vault.policy.holds import HoldError
    from vault.policy.place import place_hold
    from vault.recording import Unrecorded

    client = service_of(ctx)
    if client is not None:
        params = {"matter": matter, "custodians": list(custodians), "reason": reason, "query": query}
        params.update(date_from=date_from, date_to=date_to, reviewers=list(reviewers), acting_for=actor)
        call_service(client, "hold.place", params)
        click.echo(f"hold {matter!r} placed on {', '.join(custodians)}")
        return
    with open_vault(ctx) as vault:  # recorded directly, or through the broker while it runs
        try:
            change = place_hold(
                vault,
                matter,
                custodians=custodians,
                reason=reason,
                actor=actor,
                query=query,
                date_from=date_from,
                date_to=date_to,
                reviewers=reviewers,
            )
        except (HoldError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"hold {matter!r} placed on {', '.join(custodians)}{_how(change.how)}")


@command.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx, show_all, as_json):
    with open_vault(ctx) as vault:
        holds = [d for d in vault.catalog.hold_data() if show_all or not d.get("released_at")]
    if as_json:
        print_json(holds)
        return
    for d in holds:
        state = f"released {d['released_at']}" if d.get("released_at") else "active"
        click.echo(f"{d['matter']:<24} {state:<34} {','.join(d['custodians']):<24} {d['reason']}")


@command.command("show")
@click.argument("matter")
@click.pass_context
def show(ctx, matter):
    with open_vault(ctx) as vault:
        found = [d for d in vault.catalog.hold_data() if d["matter"] == matter]
    if not found:
        raise click.ClickException(f"no hold named {matter!r}")
    print_json(found[-1])


@command.command("release")
@click.argument("matter")
@click.option("--actor", help="Who releases it (default: the OS user).")
@click.pass_context
def release(ctx, matter, actor):
    from vault.policy.holds import HoldError
    from vault.policy.place import release_hold
    from vault.recording import Unrecorded

    client = service_of(ctx)
    if client is not None:
        call_service(client, "hold.release", {"matter": matter, "acting_for": actor})
        click.echo(f"hold {matter!r} released")
        return
    with open_vault(ctx) as vault:
        try:
            change = release_hold(vault, matter, actor=actor)
        except (HoldError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"hold {matter!r} released{_how(change.how)}")


def _how(how: str) -> str:
    return "" if how == "recorded" else " (queued with the broker: live ingest holds the vault)"
