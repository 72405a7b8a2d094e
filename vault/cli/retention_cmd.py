"""vaultctl retention: explain an item's retention, and sweep (purge) what rules allow."""

from typing import TYPE_CHECKING

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    emit,
    json_option,
    load_config,
    open_vault,
    print_json,
    refuse_here,
    service_of,
)
from vault.cli.confirm import confirm_removal, yes_option

if TYPE_CHECKING:  # the CLI imports engines lazily, when a command runs
    pass


def _now(value):
    from vault.model import now, parse_time

    try:
        return parse_time(value) if value else now()
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--now") from None


@click.group("retention")
def command():
    """Retention rules (TOML files in the policy rules_path) and sweeps."""


@command.command("explain")
@click.argument("item")
@click.option("--now", "as_of", help="Evaluate as of this time (ISO 8601), e.g. for what-if.")
@json_option
@click.pass_context
def explain_(ctx, item, as_of, as_json):
    """Which rules match ITEM, which wins and why, and which holds override it."""
    from vault.access import hold_shown, require_explain
    from vault.identity import Forbidden
    from vault.model import format_time
    from vault.policy.explain import explain_item
    from vault.policy.rules import RulesError

    when = _now(as_of)
    client = service_of(ctx)
    try:
        if client is not None:
            params = {"item": item, "as_of": as_of and format_time(when)}
            text = call_service(client, "retention.explain", params)["text"]
        else:
            with open_vault(ctx) as vault:
                caller = direct_caller(vault, None, f"explain the retention of {item}")
                row = vault.catalog.item(item)
                if row is None:
                    raise click.ClickException(f"no item {item!r} in the archive")
                try:
                    require_explain(vault, caller, row, f"explain the retention of {item}")
                except Forbidden as e:
                    refuse_here(vault, e)
                text = explain_item(vault, item, when, shown=hold_shown(caller))
    except RulesError as e:
        raise click.ClickException(str(e)) from None
    emit(as_json, {"item": item, "as_of": format_time(when), "explanation": text}, text)


def _direct_admin(vault, actor, action: str):
    """This OS user as the caller of work on the home it opened: an admin (a refusal is recorded)."""
    from vault.policy.approval import require_admin

    caller = direct_caller(vault, actor, action)
    try:
        require_admin(vault, caller, action)
    except PermissionError as e:
        raise click.ClickException(str(e)) from None
    return caller


def _preview(ctx, as_of, actor):
    """A dry run of the sweep about to run: by the service while it runs, else here."""
    from vault.model import format_time
    from vault.policy.sweep import SweepReport, sweep

    client = service_of(ctx)
    if client is not None:
        params = {"as_of": format_time(_now(as_of)), "acting_for": actor, "dry_run": True}
        return SweepReport(**call_service(client, "sweep", params))
    with open_vault(ctx) as vault:
        caller = _direct_admin(vault, actor, "see what a retention sweep would purge")
        return sweep(vault, now=_now(as_of), dry_run=True, actor=caller.actor)


@command.command("sweep")
@click.option("--dry-run", is_flag=True, help="List what would be purged and why; change nothing.")
@click.option("--now", "as_of", help="Sweep as of this time (ISO 8601).")
@click.option("--actor", help="Whom it is done for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True)
@yes_option
@click.pass_context
def sweep_(ctx, dry_run, as_of, actor, as_json, yes):
    """Purge every item whose retention has run out and that no hold protects. While the
    vault service runs, it sweeps with its writer and its report comes back. It lists what
    it will purge first; without --dry-run it needs --yes when stdin is not a terminal."""
    from vault.model import format_time
    from vault.policy.rules import RulesError
    from vault.policy.sweep import SweepReport, sweep
    from vault.recording import Unrecorded
    from vault.service.schedule import sweep_or_serve

    config = load_config(ctx)
    report: SweepReport
    try:
        if not dry_run:  # what it will purge, first (the sweep decides again when it runs)
            preview = _preview(ctx, as_of, actor)
            confirm_removal(
                f"this retention sweep purges {len(preview.purge)} item(s) ({len(preview.held)} kept by holds)",
                [f"{p['item']} ({p['mailbox']}): rule {p['rule']}" for p in preview.purge],
                yes or not preview.purge,
            )
        if dry_run:
            with open_vault(ctx) as vault:
                caller = _direct_admin(vault, actor, "see what a retention sweep would purge")
                report = sweep(vault, now=_now(as_of), dry_run=True, actor=caller.actor)
        elif (client := service_of(ctx)) is not None:
            answer = call_service(
                client, "sweep", {"as_of": as_of and format_time(_now(as_of)), "acting_for": actor}
            )
            report = SweepReport(**answer)
        else:
            with open_vault(ctx) as vault:
                caller = _direct_admin(vault, actor, "run a retention sweep")
            report = sweep_or_serve(
                config, actor=caller.actor, now=_now(as_of) if as_of else None, acting_for=actor
            )
    except (RulesError, Unrecorded) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        print_json(report.__dict__)
        return
    verb = "would purge" if dry_run else "purged"
    for p in report.purge:
        click.echo(f"{verb} {p['item']} ({p['mailbox']}): {p['reason']}")
    for h in report.held:
        click.echo(f"kept {h['item']} ({h['mailbox']}): held by {', '.join(h['holds'])}")
    click.echo(f"{len(report.purge)} {verb}, {len(report.held)} held, {report.blobs_deleted} blobs deleted")
