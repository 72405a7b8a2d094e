"""vaultctl retention: explain an item's retention, and sweep (purge) what rules allow."""

from typing import TYPE_CHECKING

import click

from vault.cli.common import call_service, load_config, open_vault, print_json, service_of

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
@click.pass_context
def explain_(ctx, item, as_of):
    """Which rules match ITEM, which wins and why, and which holds override it."""
    from vault.policy.explain import explain
    from vault.policy.rules import RulesError, rules_from_config
    from vault.policy.sweep import facts_of, holds_of

    with open_vault(ctx) as vault:
        row = vault.catalog.item(item)
        if row is None:
            raise click.ClickException(f"no item {item!r} in the archive")
        try:
            rules = rules_from_config(vault.config)
        except RulesError as e:
            raise click.ClickException(str(e)) from None
        click.echo(
            explain(facts_of(vault, row), rules, _now(as_of), [h for h in holds_of(vault) if h.active()])
        )


@command.command("sweep")
@click.option("--dry-run", is_flag=True, help="List what would be purged and why; change nothing.")
@click.option("--now", "as_of", help="Sweep as of this time (ISO 8601).")
@click.option("--actor", help="Who runs it (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sweep_(ctx, dry_run, as_of, actor, as_json):
    """Purge every item whose retention has run out and that no hold protects. While the
    vault service runs, it sweeps with its writer and its report comes back."""
    from vault.archive import actor_of
    from vault.model import format_time
    from vault.policy.rules import RulesError
    from vault.policy.sweep import SweepReport, sweep
    from vault.recording import Unrecorded
    from vault.service.schedule import sweep_or_serve

    config = load_config(ctx)
    report: SweepReport
    try:
        if dry_run:
            with open_vault(ctx) as vault:
                report = sweep(vault, now=_now(as_of), dry_run=True, actor=actor)
        elif (client := service_of(ctx)) is not None:
            answer = call_service(
                client, "sweep", {"as_of": as_of and format_time(_now(as_of)), "acting_for": actor}
            )
            report = SweepReport(**answer)
        else:
            report = sweep_or_serve(
                config,
                actor=actor_of(config, actor),
                now=_now(as_of) if as_of else None,
                acting_for=actor,
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
