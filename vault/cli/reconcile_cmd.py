"""vaultctl reconcile: compare the archive with the mailboxes on the server, record the
differences (also run on [policy] reconcile_schedule by 'vaultctl serve')."""

import click

from vault.cli.common import load_config, print_json, progress


@click.command("reconcile")
@click.option(
    "--mailbox",
    "-m",
    "mailboxes",
    multiple=True,
    help="Folder name or mailboxID (repeatable); default: every live folder.",
)
@click.option("--collector", "address", help="Collector endpoint (default: [collector] address).")
@click.option(
    "--via-broker",
    is_flag=True,
    help="Queue the work with the broker ([dealer] broker) for its workers; done "
    "anyway when the broker's committer holds the vault.",
)
@click.option("--actor", default="vault-reconcile", show_default=True, help="Recorded as the actor.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailboxes, address, via_broker, actor, as_json):
    """Ask the collector what each mailbox holds and record every difference with the archive
    as a ledger entry: messages the archive never saw are fetched and archived, messages gone
    from the server are expunged, flags, names and ACLs are brought in line."""
    from vault.ingest.collector.client import CollectorClient, CollectorError, CollectorRefused
    from vault.ingest.reconcile import live_folders, reconcile
    from vault.recording import Unrecorded, write_or_queue
    from vault.service.schedule import reconcile_requests

    config = load_config(ctx)

    def write(vault):
        client = CollectorClient(
            address or config["collector"]["address"], timeout=config["collector"]["timeout_seconds"]
        )
        with client:
            targets = list(mailboxes) or live_folders(vault.catalog)
            try:
                with progress("reconciling", len(targets), enabled=not as_json) as advance:
                    return reconcile(vault, client, targets, actor=actor, progress=advance)
            except (CollectorError, CollectorRefused) as e:
                raise click.ClickException(f"{e} (differences found so far are recorded)") from None

    names: list[str] = []

    def queue() -> list[bytes]:
        requests = reconcile_requests(config, list(mailboxes), actor)
        names.extend(name for name, _ in requests)
        return [event for _, event in requests]

    try:
        outcome = write_or_queue(config, write, queue, queue_only=via_broker)
    except Unrecorded as e:
        raise click.ClickException(str(e)) from None
    if outcome.result is None:
        _print_queued(config, names, outcome.queued, as_json)
        return
    reports = outcome.result
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    for r in reports:
        what = (
            f"{len(r.appended)} appended, {len(r.expunged)} expunged, "
            f"{len(r.flag_changes)} flag changes"
            + (f", folder: {', '.join(r.folder_changes)}" if r.folder_changes else "")
        )
        click.echo(f"{r.mailbox}: {what if r.differences else 'in step'}")
        for p in r.problems:
            click.echo(f"  problem: {p}", err=True)


def _print_queued(config, names: list[str], queued: list[str], as_json: bool) -> None:
    if as_json:
        print_json([{"mailbox": name, "queued": eid} for name, eid in zip(names, queued)])
        return
    click.echo(f"queued {len(queued)} reconciliation(s) with the broker {config['dealer']['broker']}")
