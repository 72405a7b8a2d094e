"""vaultctl import: snapshot runs of Maildirs, mboxes, .eml directories or Cyrus folders."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    open_vault,
    print_json,
    progress,
    refuse_here,
    service_of,
)
from vault.cli.outcome import finish

if TYPE_CHECKING:  # the CLI imports engines lazily, when a command runs
    from vault.ingest.importers.importer import ImportReport


def _absolute(source: str) -> Path:
    """The source as given, made absolute without resolving links (a source that is a link is
    the importer's to refuse or follow, and {name}/{parent} are the names the operator sees)."""
    return Path(os.path.abspath(source))


def mailbox_for(template: str, source: str) -> str:
    path = _absolute(source)
    return template.format(name=path.name, parent=path.parent.name)


@click.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option(
    "--mailbox",
    "-m",
    required=True,
    help="Archive folder, e.g. user/jane/INBOX. With several sources, a template: "
    "{name} is the source's own name, {parent} its directory's, e.g. 'user/{parent}/INBOX'.",
)
@click.option(
    "--format",
    "kind",
    type=click.Choice(["maildir", "mbox", "eml", "cyrus"]),
    help="Source format (default: detected).",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Follow symbolic links that stay inside the source (and a SOURCE that is one). "
    "Without it links, like FIFOs and devices, are skipped and reported.",
)
@click.option("--actor", help="Whom it is done for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def command(ctx, sources, mailbox, kind, follow_symlinks, actor, as_json):
    """Import each SOURCE into its mailbox: new messages are appended, vanished ones
    expunged, changed flags recorded. Re-running with nothing changed adds nothing.
    Only regular files are read: links, FIFOs and devices in a source are reported."""
    from vault.store.backends.base import StoreError

    try:
        targets = [(s, mailbox_for(mailbox, s)) for s in sources]
    except (ValueError, KeyError, IndexError) as e:  # a stray { or an unknown {field}
        raise click.BadParameter(
            f"{mailbox!r}: {e} (a template may name {{name}} and {{parent}}; write {{{{ for a brace)",
            param_hint="--mailbox",
        ) from None
    if len({m for _, m in targets}) < len(targets):
        raise click.UsageError("several sources map to one mailbox: put {name} or {parent} in --mailbox")
    reports: list[ImportReport] = []
    failed: list[str] = []  # one error line per source that could not be read
    client = service_of(ctx)
    try:
        if client is not None:  # the service imports with its writer, live ingest or not
            from vault.ingest.importers.importer import ImportReport as Report

            answer = call_service(
                client,
                "import",
                {
                    "targets": [[str(_absolute(s)), m] for s, m in targets],
                    "kind": kind,
                    "acting_for": actor,
                    **({"follow_symlinks": True} if follow_symlinks else {}),
                },
            )
            reports = [Report.from_json(r) for r in answer["imports"]]
            failed = answer["errors"]
            for error in failed:
                click.echo(f"error: {error}", err=True)
        else:
            _run(ctx, targets, kind, follow_symlinks, actor, as_json, reports, failed)
    except StoreError as e:
        # full disk, dead S3 endpoint...: committed batches stay; a re-run resumes after them
        from vault.archive import disk_full, full_disk_message

        if disk_full(e) is not None:
            raise click.ClickException(full_disk_message(e)) from None
        raise click.ClickException(
            f"{e}\nnothing committed was lost: run the import again to resume"
        ) from None
    for report in reports:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        if not as_json:
            already = f", {report.already_archived} already archived" if report.already_archived else ""
            click.echo(
                f"{report.mailbox}: {report.appended} appended, {report.expunged} expunged, "
                f"{report.flag_changes} flag changes, {report.unchanged} unchanged{already} "
                f"({report.seconds:.1f}s, {report.kind} source)"
            )
        for p in report.problems:
            click.echo(f"  problem: {p.path}: {p.reason}", err=True)
        if report.problems:
            click.echo(
                f"{len(report.problems)} problem(s) in {report.source}; everything readable was archived",
                err=True,
            )
    if as_json:
        out = [r.to_json() for r in reports]
        print_json(out[0] if len(sources) == 1 and out else {"imports": out, "errors": failed})
    if failed:
        raise click.ClickException(f"{len(failed)} source(s) could not be imported: " + "; ".join(failed))
    finish(sum(r.unread for r in reports))  # exit 3: files that could not be read


def _run(ctx, targets, kind, follow_symlinks, actor, as_json, reports, failed):
    from vault.ingest.importers.importer import import_sources

    with open_vault(ctx, writer=True) as vault:
        caller = direct_caller(vault, actor, "import")
        try:
            caller.require("import")
        except PermissionError as e:
            refuse_here(vault, e)
        done, errors = import_sources(
            vault,
            caller,
            targets,
            kind=kind,
            follow_symlinks=follow_symlinks,
            progress=lambda source, total: progress(f"importing {source}", total, enabled=not as_json),
        )
    reports += done
    failed += errors
    for why in errors:
        click.echo(f"error: {why}", err=True)
