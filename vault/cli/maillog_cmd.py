"""vaultctl maillog: import Postfix / Sendmail / Cyrus mail logs for queue-ID chasing."""

from datetime import UTC

import click

from vault.cli.common import load_config, print_json, progress


def _zone(config, name: str | None):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = name or config["maillog"]["timezone"]
    if not name:
        return None  # this host's local zone
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {name!r}", param_hint="--timezone") from None


@click.group("maillog")
def command():
    """Mail logs (syslog, Postfix maillog_file, plain or .gz) into hop records for 'vaultctl trace'."""


@command.command("import")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", help="Host name for these lines (default: each line's syslog host).")
@click.option(
    "--follow",
    "follow",
    type=click.Path(dir_okay=False),
    help="Keep reading this growing log (across rotations) until interrupted.",
)
@click.option(
    "--timezone",
    "zone",
    help="Zone of RFC 3164 times, e.g. Europe/Berlin (default: [maillog] timezone or this host's).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def import_(ctx, files, host, follow, zone, as_json):
    """Import FILE... (again: only what is new; nothing twice). Prints lines read, hops
    stored, and the lines skipped with the reason."""
    import signal

    from vault.trace.hops import ImportReport, MaillogStore

    if not files and not follow:
        raise click.UsageError("give FILE... or --follow FILE")
    config = load_config(ctx)
    tz = _zone(config, zone)
    store = MaillogStore.from_config(config, writing=True)
    report = ImportReport()
    try:
        for name in files:
            with progress(f"reading {name}", None, enabled=not as_json) as advance:
                store.import_file(name, host=host, zone=tz, progress=advance, report=report)
        if follow:
            stopping = []
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *a: stopping.append(True))
            click.echo(f"following {follow} (Ctrl-C to stop)", err=True)

            def tell(batch):
                if not as_json:
                    click.echo(f"{batch.stats.lines} line(s), {batch.stored} new hop(s)", err=True)

            followed = store.follow(follow, host=host, zone=tz, stop=lambda: bool(stopping), on_batch=tell)
            report.stats.merge(followed.stats)
            report.stored += followed.stored
            report.files.append(follow)
    finally:
        store.close()
    out = report.to_json()
    if as_json:
        print_json(out)
        return
    click.echo(
        f"{out['lines']} line(s) read from {len(report.files)} file(s): {out['hops']} hop(s), "
        f"{out['stored']} new; {out['ignored']} about no message; {out['unparsed']} unreadable"
    )
    for reason, n in out["unparsed_by_reason"].items():
        click.echo(f"  unreadable: {n} x {reason}")
