"""vaultctl hold: legal holds (matters) that preserve mail regardless of retention."""

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    emit,
    json_option,
    open_vault,
    print_json,
    refuse_here,
    service_of,
)
from vault.cli.four_eyes import add_commands


@click.group("hold")
def command():
    """Place, list, show and release legal holds. A hold always wins over retention. A
    release takes two admins: one requests it ('release'), another approves it ('approve')."""


@command.command("create")
@click.argument("matter")
@click.option(
    "--custodian", "custodians", multiple=True, required=True, help="User whose mail is held (repeatable)."
)
@click.option("--query", help="Only mail matching this search query.")
@click.option(
    "--from",
    "date_from",
    help="Received (internal) date from: a day or a time, in [site] timezone unless zoned.",
)
@click.option(
    "--to", "date_to", help="Received (internal) date to, inclusive: a bare day covers the whole day."
)
@click.option(
    "--reviewer",
    "reviewers",
    multiple=True,
    help="Who may search and export this matter (repeatable; admins only).",
)
@click.option("--reason", required=True)
@click.option("--actor", help="Whom it is placed for (admins only; default: yourself).")
@click.option(
    "--force", is_flag=True, help="Place it even with a query that does not parse or unknown custodians."
)
@json_option
@click.pass_context
def create(ctx, matter, custodians, query, date_from, date_to, reviewers, reason, actor, force, as_json):
    """Place hold MATTER on the custodians' mail (within the received dates, matching the
    query: it covers what 'search' finds with the same query and dates, vault/dates.py).
    Admins place any; a reviewer one within the matters they review, naming no reviewers."""
    from vault.policy.holds import HoldError
    from vault.policy.place import place_hold
    from vault.recording import Unrecorded

    client = service_of(ctx)
    if client is not None:
        params = {"matter": matter, "custodians": list(custodians), "reason": reason, "query": query}
        params.update(date_from=date_from, date_to=date_to, reviewers=list(reviewers), acting_for=actor)
        params["force"] = force
        placed = call_service(client, "hold.place", params)
        emit(as_json, placed, [_placed(placed["hold"]), *(f"  {n}" for n in placed.get("cyrus") or [])])
        return
    with open_vault(ctx) as vault:  # no service: recorded with the writer lock
        try:
            caller = direct_caller(vault, actor, f"place hold {matter!r}")
            change = place_hold(
                vault,
                caller,
                matter,
                custodians=custodians,
                reason=reason,
                query=query,
                date_from=date_from,
                date_to=date_to,
                reviewers=reviewers,
                force=force,
            )
        except (HoldError, PermissionError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    placed = {"hold": change.hold.to_data(), "how": change.how, "cyrus": change.cyrus}
    emit(as_json, placed, [_placed(placed["hold"]), *(f"  {n}" for n in change.cyrus)])


def _placed(hold: dict) -> str:
    """What a placed hold covers, its received dates shown with their zone."""
    from vault.dates import show
    from vault.model import parse_time

    def when(key: str, open_end: str) -> str:
        return show(parse_time(hold[key])) if hold.get(key) else open_end

    query = f", matching {hold['query']!r}" if hold.get("query") else ""
    return (
        f"hold {hold['matter']!r} placed on {', '.join(hold['custodians'])}: mail received "
        f"{when('date_from', 'any time')} to {when('date_to', 'any time')}{query}"
    )


def _holds(ctx, everything: bool, action: str) -> list[dict]:
    """The holds this caller may see (vault/access.py), from the service or the home."""
    from vault.access import visible_holds
    from vault.identity import Forbidden

    client = service_of(ctx)
    if client is not None:
        return call_service(client, "hold.list", {"all": everything})
    with open_vault(ctx) as vault:
        try:
            return visible_holds(vault, direct_caller(vault, None, action), action, everything=everything)
        except Forbidden as e:
            refuse_here(vault, e)
            raise


@command.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx, show_all, as_json):
    """The holds: admins and auditors see all, a reviewer the matters naming them."""
    holds = _holds(ctx, show_all, "list holds")
    if as_json:
        print_json(holds)
        return
    for d in holds:
        state = f"released {d['released_at']}" if d.get("released_at") else "active"
        click.echo(f"{d['matter']:<24} {state:<34} {','.join(d['custodians']):<24} {d['reason']}")


@command.command("show")
@click.argument("matter")
@json_option
@click.pass_context
def show(ctx, matter, as_json):
    """One hold (its latest placing) as JSON (with or without --json)."""
    client = service_of(ctx)
    if client is not None:
        print_json(call_service(client, "hold.show", {"matter": matter}))
        return
    found = [d for d in _holds(ctx, True, f"see hold {matter!r}") if d["matter"] == matter]
    if not found:
        raise click.ClickException(f"no hold named {matter!r}")
    print_json(found[-1])


@command.command("release")
@click.argument("matter")
@click.option("--reason", help="Why (required): e.g. the matter settled.")
@click.option("--dry-run", is_flag=True, help="Show the hold it would release; record nothing.")
@click.option("--actor", help="Whom the request is made for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def release(ctx, matter, reason, dry_run, actor, as_json):
    """Request the release of hold MATTER: prints the request id, for another admin to
    'vaultctl hold approve ID'. Requests expire after [policy] request_expiry."""
    from vault.policy.approval import local_caller
    from vault.policy.holds import HoldError
    from vault.policy.place import request_release
    from vault.recording import Unrecorded

    if not reason and not dry_run:
        raise click.UsageError("a release request needs --reason")
    client = service_of(ctx)
    if client is not None:
        params = {"matter": matter, "reason": reason, "dry_run": dry_run, "acting_for": actor}
        _print_request(matter, call_service(client, "hold.release", params), dry_run, as_json)
        return
    with open_vault(ctx) as vault:  # no service: recorded with the writer lock
        try:
            caller = local_caller(vault, acting_for=actor, action=f"request the release of hold {matter!r}")
            asked = request_release(vault, caller, matter, reason=reason or "", dry_run=dry_run)
        except (HoldError, PermissionError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    _print_request(matter, asked.to_json(), dry_run, as_json)


def _print_request(matter: str, asked: dict, dry_run: bool, as_json: bool) -> None:
    """A hold release request (or its dry run), made here or by the service."""
    if as_json:
        print_json({**asked, "dry_run": dry_run})
        return
    if dry_run:
        click.echo(f"dry run: a release request for hold {matter!r} would release it; nothing recorded")
        print_json(asked["hold"])
        return
    click.echo(f"release request {asked['request']} for hold {matter!r} recorded")
    click.echo(
        f"another admin approves it with: vaultctl hold approve {asked['request']}  (expires {asked['expires_at']})"
    )


@command.command("approve")
@click.argument("request_id")
@json_option
@click.pass_context
def approve(ctx, request_id, as_json):
    """Approve release request REQUEST_ID (made by another admin): the hold is released."""
    from vault.policy.approval import RequestError, local_caller
    from vault.policy.holds import HoldError
    from vault.policy.place import approve_release
    from vault.recording import Unrecorded

    client = service_of(ctx)
    if client is not None:
        done = call_service(client, "hold.approve", {"request": request_id})
        text = f"release request {request_id} approved: hold {done['hold']['matter']!r} released"
        emit(as_json, {"request": request_id, **done}, text)
        return
    with open_vault(ctx) as vault:
        try:
            caller = local_caller(vault, acting_for=None, action=f"approve hold release request {request_id}")
            change = approve_release(vault, caller, request_id)
        except (HoldError, PermissionError, RequestError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    done = {"request": request_id, "hold": change.hold.to_data(), "how": change.how}
    emit(as_json, done, f"release request {request_id} approved: hold {change.hold.matter!r} released")


def _covers(c: dict) -> str:
    return f"hold {c.get('matter')!r}"


add_commands(command, "release", "hold release", _covers)
