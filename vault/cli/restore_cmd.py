"""vaultctl restore: a folder as it was at a point in time, into a target."""

import click

from vault.cli.common import (
    direct_caller,
    load_config,
    print_json,
    progress,
    refuse_here,
    service_of,
    service_stream,
)


@click.command("restore")
@click.option("--mailbox", "-m", required=True, help="Folder name as it was at --at.")
@click.option(
    "--at",
    "at",
    default="now",
    show_default=True,
    help="ISO 8601 time with zone (2026-11-01T12:00Z) or 'now'.",
)
@click.option("--to", "target", required=True, help="maildir:PATH, mbox:PATH or imap://USER@HOST/FOLDER.")
@click.option("--uid", type=int, help="Restore only this UID.")
@click.option("--actor", help="Whom it is done for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailbox, at, target, uid, actor, as_json):
    """Write MAILBOX as it was at AT: exactly the messages present then, byte-identical,
    with their flags then and their internal dates. Recorded in the ledger. Users restore
    their own folders, admins any. While the vault service runs it reads the messages and
    this command writes them into the target, as you."""
    from vault.access import restore_scope
    from vault.archive import VaultBusy
    from vault.derived import DerivedStateError, open_current
    from vault.identity import Forbidden
    from vault.model import format_time, parse_time
    from vault.recording import Unrecorded
    from vault.restore.pointintime import (
        RestoreError,
        RestoreReport,
        restore_snapshot,
        snapshot,
        write_messages,
    )
    from vault.restore.stream import StreamError, read_restore
    from vault.restore.targets import TargetError, describe_target

    try:
        when = parse_time(at)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from None
    client = service_of(ctx)
    if client is not None:  # the service checks the caller and streams; the target is written here
        params = {"mailbox": mailbox, "at": format_time(when), "uid": uid, "target": describe_target(target)}
        with service_stream(client, "restore", {**params, "acting_for": actor}) as body:
            try:
                head, messages = read_restore(body)
                report = RestoreReport(mailbox, head["mailbox_id"], head["at"], target, purged=head["purged"])
                report.audit = head["audit"]
                with progress(f"restoring {mailbox}", head["members"], enabled=not as_json) as advance:
                    write_messages(target, messages, report, advance)
            except (StreamError, TargetError) as e:
                raise click.ClickException(str(e)) from None
        _print(report, mailbox, target, as_json)
        return
    try:  # never answered from a catalog behind the ledger or damaged
        vault, _ = open_current(load_config(ctx), with_index=False)
    except (DerivedStateError, VaultBusy) as e:
        raise click.ClickException(str(e)) from None
    with vault:  # the audit entry takes the writer lock, or goes via the broker
        caller = direct_caller(vault, actor, f"restore {mailbox}")
        try:
            scope = restore_scope(vault, caller, mailbox)
        except Forbidden as e:
            refuse_here(vault, e)
        try:
            snap = snapshot(vault, mailbox, when, uid, visible=scope.folder)
            with progress(f"restoring {mailbox}", len(snap.items), enabled=not as_json) as advance:
                report = restore_snapshot(
                    vault, snap, target, actor=caller.login, progress=advance, extra=caller.audit_fields()
                )
        except (RestoreError, TargetError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    _print(report, mailbox, target, as_json)


def _print(report, mailbox: str, target: str, as_json: bool) -> None:
    from vault.restore.targets import describe_target

    if as_json:
        print_json(report.to_json())
        return
    click.echo(
        f"restored {report.restored} messages ({report.bytes} bytes) of {mailbox} "
        f"as at {report.at} to {describe_target(target)}"
    )
    if report.purged:
        click.echo(
            f"{len(report.purged)} message(s) present then were purged by retention: "
            + ", ".join(report.purged),
            err=True,
        )
