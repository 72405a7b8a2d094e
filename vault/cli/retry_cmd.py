"""vaultctl retry: put failed live-ingest jobs (the dead-letter list) back in the queue."""

import click

from vault.cli.common import load_config, print_json


@click.command("retry")
@click.argument("jobs", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every failed job.")
@click.option("--list", "listing", is_flag=True, help="Only list the failed jobs and why.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, jobs, every, listing, as_json):
    """Retry failed jobs by id (a unique prefix will do), or --all; --list shows them.
    The broker picks retried jobs up while it runs, or when it next starts. What the event
    wire refused (administrative requests, made-up ids) stays listed and is never retried."""
    from vault.ingest.broker.jobs import FAILED, REFUSED, JobStore

    store = JobStore.from_config(load_config(ctx))
    try:
        if listing or not (jobs or every):
            failed = [j.summary() for j in store.jobs(FAILED)]
            if as_json:
                print_json(failed)
            elif not failed:
                click.echo("no failed jobs")
            for job in failed if not as_json else []:
                click.echo(
                    f"{job['id'][:16]}  {job['event'] or '?':<20} {job['mailbox'][:36]:<36} {job['reason']}"
                )
            return
        ids = None
        if not every:
            ids = []
            for prefix in jobs:
                found = [j for j in store.find(prefix) if j.state == FAILED]
                if len(found) != 1:
                    raise click.ClickException(
                        f"{prefix}: {'no failed job' if not found else f'{len(found)} failed jobs'} with this id"
                    )
                if (found[0].reason or "").startswith(REFUSED):
                    raise click.ClickException(
                        f"{prefix}: refused on the event wire, it stays a dead letter ({found[0].reason})"
                    )
                ids.append(found[0].id)
        count = store.retry(ids)
    finally:
        store.close()
    if as_json:
        print_json({"retried": count})
    else:
        click.echo(f"{count} job(s) back in the queue")
