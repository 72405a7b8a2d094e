"""vaultctl erase: a data-subject erasure request, refused while any hold applies."""
import click

from vault.cli.common import open_vault, print_json


@click.command("erase")
@click.option("--custodian", required=True, help="The user whose archived mail is erased.")
@click.option("--actor", help="Who requests it (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, custodian, actor, as_json):
    """Purge every item of CUSTODIAN and write a certificate (ids and hashes, no content)
    to the ledger. Refused, naming the holds, while any hold applies."""
    from vault.archive import default_actor
    from vault.policy.erase import ErasureRefused, erase_custodian

    with open_vault(ctx, writer=True) as vault:
        try:
            cert = erase_custodian(vault, custodian, actor=actor or default_actor())
        except ErasureRefused as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        print_json(cert)
    else:
        click.echo(f"erased {len(cert['items'])} item(s) of {custodian}; {cert['blobs_deleted']} blob(s) deleted; "
                   "certificate recorded in the ledger")
