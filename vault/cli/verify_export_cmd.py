"""vaultctl verify-export: check an export offline with only the export and the public key."""

import sys

import click


@click.command("verify-export")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The vault's verifier key file (<key_path>.pub), obtained independently of the export.",
)
def command(path, key_file):
    """Exit 0 only if every file, hash, inclusion proof and the checkpoint signature hold."""
    from vault.restore.export_check import check_export

    with open(key_file, encoding="utf-8") as f:
        problems = check_export(path, f.read())
    if problems:
        for p in problems:
            click.echo(f"FAILED: {p}", err=True)
        sys.exit(1)
    click.echo(f"ok: {path} is intact and every item is in the signed ledger")
