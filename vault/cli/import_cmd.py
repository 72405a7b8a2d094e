"""vaultctl import: one snapshot run of a Maildir, mbox, .eml directory or Cyrus folder."""
import click

from vault.cli.common import open_vault, print_json, progress


@click.command("import")
@click.argument("source", type=click.Path())
@click.option("--mailbox", "-m", required=True, help="Archive folder, e.g. user/jane/INBOX.")
@click.option("--format", "kind", type=click.Choice(["maildir", "mbox", "eml", "cyrus"]),
              help="Source format (default: detected).")
@click.option("--actor", help="Who runs this (default: the OS user).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def command(ctx, source, mailbox, kind, actor, as_json):
    """Import SOURCE into MAILBOX: new messages are appended, vanished ones expunged,
    changed flags recorded. Re-running with nothing changed adds nothing."""
    from vault.ingest.importer import Importer
    from vault.ingest.importers.base import SourceError

    with open_vault(ctx, writer=True) as vault:
        try:
            importer = Importer(vault, source, mailbox, kind=kind, actor=actor)
            with progress(f"importing {source}", importer.count(), enabled=not as_json) as advance:
                importer.progress = advance
                report = importer.run()
        except SourceError as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(
            f"{mailbox}: {report.appended} appended, {report.expunged} expunged, "
            f"{report.flag_changes} flag changes, {report.unchanged} unchanged "
            f"({report.seconds:.1f}s, {report.kind} source)"
        )
    for p in report.problems:
        click.echo(f"  problem: {p.path}: {p.reason}", err=True)
    if report.problems:
        click.echo(f"{len(report.problems)} problem(s); everything readable was archived", err=True)
