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
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Every mailbox on the server too (IMAP LIST as the admin): a first sync; resumes where a killed run stopped.",
)
@click.option("--full", is_flag=True, help="Enumerate every mailbox, even those unchanged (HIGHESTMODSEQ).")
@click.option("--collector", "address", help="Collector endpoint (default: [collector] address).")
@click.option(
    "--actor",
    help="Recorded as the actor (default: vault-reconcile; through the vault service, the caller).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, mailboxes, address, actor, as_json, everything, full):
    """Ask the collector what each mailbox holds and record every difference with the archive
    as a ledger entry: messages the archive never saw are fetched and archived, messages gone
    from the server are expunged, flags, names and ACLs are brought in line. While the vault
    service runs, it reconciles with its writer. Mailboxes whose HIGHESTMODSEQ is as at
    their last reconciliation are not enumerated again (--full does)."""
    from vault.curve.keys import CurveError
    from vault.ingest.collector.client import CollectorClient, CollectorError, CollectorRefused
    from vault.ingest.reconcile import ACTOR, reconcile, targets_of
    from vault.recording import Unrecorded, write_or_serve

    config = load_config(ctx)
    if everything and mailboxes:
        raise click.UsageError("--all and --mailbox exclude each other")

    def write(vault) -> list[dict]:
        try:
            client = CollectorClient.from_config(config, address)
        except CurveError as e:
            raise click.ClickException(str(e)) from None
        with client:
            try:
                targets = targets_of(vault.catalog, client, list(mailboxes), everything=everything)
                with progress("reconciling", len(targets), enabled=not as_json) as advance:
                    reports = reconcile(
                        vault,
                        client,
                        list(mailboxes),
                        actor=actor or ACTOR,
                        progress=advance,
                        everything=everything,
                        full=full,
                        targets=targets,
                    )
            except (CollectorError, CollectorRefused) as e:
                raise click.ClickException(f"{e} (differences found so far are recorded)") from None
        return [r.to_json() for r in reports]

    request = {
        "mailboxes": list(mailboxes),
        "collector": address,
        "acting_for": actor,
        **({"all": True} if everything else {}),
        **({"full": True} if full else {}),
    }
    try:
        reports = write_or_serve(config, write, service_request=("reconcile", request))
    except Unrecorded as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        print_json(reports)
        return
    for r in reports:
        what = (
            f"{len(r['appended'])} appended, {len(r['expunged'])} expunged, "
            f"{len(r['flag_changes'])} flag changes"
            + (f", folder: {', '.join(r['folder_changes'])}" if r["folder_changes"] else "")
        )
        same = "in step" + (" (unchanged since the last reconciliation)" if r.get("unchanged") else "")
        click.echo(f"{r['mailbox']}: {what if r['differences'] else same}")
        for p in r["problems"]:
            click.echo(f"  problem: {p}", err=True)
