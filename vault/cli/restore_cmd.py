"""vaultctl restore: a folder, or all of a user's, as it was at a point in time, into a target."""

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    load_config,
    print_json,
    progress,
    refuse_here,
    service_of,
    service_stream,
)
from vault.cli.outcome import finish


@click.command("restore")
@click.option("--mailbox", "-m", help="Folder name as it was at --at.")
@click.option("--user", "-u", help="Every folder of this user instead (user/NAME is the INBOX).")
@click.option(
    "--at",
    "at",
    default="now",
    show_default=True,
    help="ISO 8601 time with zone (2026-11-01T12:00Z) or 'now'.",
)
@click.option(
    "--to",
    "target",
    required=True,
    help="maildir:PATH, mbox:PATH, mbox:- (standard output) or imap://USER@HOST/FOLDER.",
)
@click.option("--uid", type=click.IntRange(min=1), help="Restore only this UID (with --mailbox).")
@click.option("--actor", help="Whom it is done for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailbox, user, at, target, uid, actor, as_json):
    """Write MAILBOX as it was at AT: exactly the messages present then, byte-identical,
    with their flags then and their internal dates. With --user, every folder the user had
    then, each under its name (maildir:DIR/user/jane, DIR/user/jane/Sent...; mbox:DIR/NAME.mbox;
    mbox:- one after the other). Recorded in the ledger. Users restore their own folders,
    admins any. While the vault service runs it reads the messages and this command writes
    them into the target, as you. A message that cannot be read is skipped and listed, the
    rest restored, and the exit code is 3."""
    from vault.model import parse_time

    if (mailbox is None) == (user is None):
        raise click.UsageError("name what to restore: --mailbox FOLDER or --user NAME")
    if user is not None and uid is not None:
        raise click.UsageError("--uid picks a message of one --mailbox")
    try:
        when = parse_time(at)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from None
    client = service_of(ctx)
    if client is not None:
        reports = _through_service(client, mailbox, user, when, target, uid, actor, as_json)
    else:
        reports = _here(ctx, mailbox, user, when, target, uid, actor, as_json)
    _print(reports, user, target, as_json)
    unreadable = [u for r in reports for u in r.unreadable]
    if unreadable and not any(r.restored for r in reports):  # nothing at all: fatal, no target made
        raise click.ClickException(
            f"none of the {len(unreadable)} message(s) could be read ({unreadable[0]['reason']}); nothing restored"
        )
    finish(len(unreadable))


def _targets(names: list[str], target: str, whole_user: bool) -> list[tuple[str, str]]:
    from vault.restore.targets import TargetError, folder_target

    try:
        return [(n, folder_target(target, n) if whole_user else target) for n in names]
    except TargetError as e:
        raise click.ClickException(str(e)) from None


def _through_service(client, mailbox, user, when, target, uid, actor, as_json):
    """The service checks the caller and streams each folder; the target is written here."""
    from vault.model import format_time
    from vault.restore.pointintime import RestoreReport, write_messages
    from vault.restore.stream import StreamError, read_restore
    from vault.restore.targets import TargetError, describe_target

    at = format_time(when)
    names = [mailbox]
    if user is not None:
        names = call_service(client, "restore.folders", {"user": user, "at": at, "acting_for": actor})
    reports = []
    for name, where in _targets(names, target, user is not None):
        params = {"mailbox": name, "at": at, "uid": uid, "target": describe_target(where)}
        with service_stream(client, "restore", {**params, "acting_for": actor}) as body:
            try:
                head, messages = read_restore(body)
                report = RestoreReport(name, head["mailbox_id"], head["at"], where, purged=head["purged"])
                report.removed = head.get("removed") or {}
                report.audit = head["audit"]
                with progress(f"restoring {name}", head["members"], enabled=not as_json) as advance:
                    write_messages(where, messages, report, advance)
            except (StreamError, TargetError) as e:
                raise click.ClickException(str(e)) from None
        reports.append(report)
    return reports


def _here(ctx, mailbox, user, when, target, uid, actor, as_json):
    from vault.access import restore_scope
    from vault.archive import VaultBusy
    from vault.derived import DerivedStateError, open_current
    from vault.identity import Forbidden
    from vault.recording import Unrecorded
    from vault.restore.pointintime import RestoreError, restore_snapshot, snapshot, user_folders
    from vault.restore.targets import TargetError

    reports = []
    try:  # never answered from a catalog behind the ledger or damaged
        vault, _ = open_current(load_config(ctx), with_index=False)
    except (DerivedStateError, VaultBusy) as e:
        raise click.ClickException(str(e)) from None
    with vault:  # the audit entry takes the writer lock, or goes via the broker
        what = mailbox if user is None else f"user/{user}"
        caller = direct_caller(vault, actor, f"restore {what}")
        try:
            scope = restore_scope(vault, caller, what)
        except Forbidden as e:
            refuse_here(vault, e)
        try:
            names = [mailbox] if user is None else user_folders(vault, user, when)
            for name, where in _targets(names, target, user is not None):
                snap = snapshot(vault, name, when, uid, visible=scope.folder)
                with progress(f"restoring {name}", len(snap.items), enabled=not as_json) as advance:
                    report = restore_snapshot(
                        vault, snap, where, actor=caller.login, progress=advance, extra=caller.audit_fields()
                    )
                reports.append(report)
        except (RestoreError, TargetError, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    return reports


def _print(reports: list, user: str | None, target: str, as_json: bool) -> None:
    """The reports (on stderr when the messages went to stdout), then what was skipped."""
    from vault.restore.targets import describe_target, to_stdout

    err = to_stdout(target)
    if as_json:
        if user is None:
            found = reports[0].to_json()
        else:
            found = {
                "user": user,
                "at": reports[0].at,
                "target": describe_target(target),
                "restored": sum(r.restored for r in reports),
                "bytes": sum(r.bytes for r in reports),
                "unreadable": [u for r in reports for u in r.unreadable],
                "folders": [r.to_json() for r in reports],
            }
        if err:
            import json

            click.echo(json.dumps(found, ensure_ascii=False), err=True)
        else:
            print_json(found)
        return
    for r in reports:
        click.echo(
            f"restored {r.restored} messages ({r.bytes} bytes) of {r.mailbox} "
            f"as at {r.at} to {describe_target(r.target)}",
            err=err,
        )
        if r.purged:
            click.echo(f"{len(r.purged)} message(s) present then are gone from the archive:", err=True)
            for item in r.purged:
                click.echo(f"  {item}: {r.removed.get(item, 'purged')}", err=True)
        for u in r.unreadable:
            click.echo(f"  unreadable: {u['item']}: {u['reason']}", err=True)
    unreadable = sum(len(r.unreadable) for r in reports)
    if unreadable:
        click.echo(
            f"{unreadable} message(s) could not be read and were skipped; the rest are restored", err=True
        )
    if user is not None:
        total = sum(r.restored for r in reports)
        click.echo(f"{user}: {total} messages in {len(reports)} folder(s)", err=err)
