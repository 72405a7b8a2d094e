"""vaultctl restore: a folder as it was at a point in time, into a target."""

import click

from vault.cli.common import open_vault, print_json, progress


@click.command("restore")
@click.option("--mailbox", "-m", required=True, help="Folder name as it was at --at.")
@click.option(
    "--at",
    "at",
    default="now",
    show_default=True,
    help="ISO 8601 time with zone (2026-11-01T12:00Z) or 'now'.",
)
@click.option("--to", "target", required=True, help="maildir:PATH or mbox:PATH.")
@click.option("--uid", type=int, help="Restore only this UID.")
@click.option("--actor", help="Who runs this (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailbox, at, target, uid, actor, as_json):
    """Write MAILBOX as it was at AT: exactly the messages present then, byte-identical,
    with their flags then and their internal dates. Recorded in the ledger."""
    from vault.model import parse_time
    from vault.recording import Unrecorded
    from vault.restore.pointintime import RestoreError, restore_snapshot, snapshot
    from vault.restore.targets import TargetError

    try:
        when = parse_time(at)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from None
    with open_vault(ctx) as vault:  # the audit entry takes the writer lock, or goes via the broker
        try:
            snap = snapshot(vault, mailbox, when, uid)
            with progress(f"restoring {mailbox}", len(snap.items), enabled=not as_json) as advance:
                report = restore_snapshot(vault, snap, target, actor=actor, progress=advance)
        except (RestoreError, TargetError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        print_json(report.to_json())
        return
    click.echo(
        f"restored {report.restored} messages ({report.bytes} bytes) of {mailbox} "
        f"as at {report.at} to {target}"
    )
    if report.purged:
        click.echo(
            f"{len(report.purged)} message(s) present then were purged by retention: "
            + ", ".join(report.purged),
            err=True,
        )
