"""vaultctl erase: a data-subject erasure request, refused while any hold applies."""

import click

from vault.cli.common import load_config, print_json


@click.command("erase")
@click.option("--custodian", help="The user whose archived mail is erased.")
@click.option("--query", help="Erase the mail this search finds (with --custodian: only theirs).")
@click.option("--actor", help="Who requests it (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, custodian, query, actor, as_json):
    """Purge every item of CUSTODIAN (or matching QUERY) and write a certificate (ids and
    hashes, no content) to the ledger. Refused, naming the holds, while any hold applies."""
    from vault.archive import actor_of
    from vault.index.query import QuerySyntaxError
    from vault.policy.erase import ErasureRefused, erase_custodian

    if not custodian and not query:
        raise click.UsageError("give --custodian, --query, or both")
    from vault.archive import Vault, VaultBusy

    try:
        vault = Vault.open(load_config(ctx), writer=True)
    except VaultBusy as e:  # an erasure must answer now (refused or certified): it cannot queue
        raise click.ClickException(
            f"{e}. While live ingest runs the broker holds the vault: stop "
            "'vaultctl broker' for the erasure (events wait at the dealer) and "
            "start it again after"
        ) from None
    with vault:
        try:
            cert = erase_custodian(vault, custodian, query=query, actor=actor_of(vault.config, actor))
        except (ErasureRefused, FileNotFoundError) as e:
            raise click.ClickException(str(e)) from None
        except QuerySyntaxError as e:
            raise click.ClickException(f"bad query: {e}") from None
    if as_json:
        print_json(cert)
    else:
        whose = " and ".join(x for x in (custodian, query and repr(query)) if x)
        click.echo(
            f"erased {len(cert['items'])} item(s) of {whose}; {cert['blobs_deleted']} blob(s) deleted; "
            "certificate recorded in the ledger"
        )
