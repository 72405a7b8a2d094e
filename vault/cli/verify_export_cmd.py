"""vaultctl verify-export: check an export offline with only the export and the public key."""

import sys

import click

from vault.cli.common import json_option, print_json


@click.command("verify-export")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The vault's verifier key file (<key_path>.pub), obtained independently of the export.",
)
@click.option(
    "--witness-key",
    "witness_key_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A witness's cosigner key file (its key.pub), obtained independently: a cosignature by "
    "it, extended by the export's checkpoint, is then required. Repeatable.",
)
@json_option
def command(path, key_file, witness_key_files, as_json):
    """Exit 0 only if every file, hash, inclusion proof, the checkpoint signature and the
    witnesses' evidence hold."""
    from vault.restore.export_check import check_export

    key = _key(key_file)
    witness_keys = [_key(name).strip() for name in witness_key_files]
    problems = check_export(path, key, witness_keys)
    if as_json:
        print_json({"ok": not problems, "path": path, "witnesses": len(witness_keys), "problems": problems})
        if problems:
            sys.exit(1)
        return
    if problems:
        for p in problems:
            click.echo(f"FAILED: {p}", err=True)
        sys.exit(1)
    witnessed = f", cosigned by {len(witness_keys)} witness(es)" if witness_keys else ""
    click.echo(f"ok: {path} is intact and every item is in the signed ledger{witnessed}")


def _key(name: str) -> str:
    """A key file's text (a note verifier key: one line of text)."""
    try:
        with open(name, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise click.ClickException(f"{name}: not a verifier key (not UTF-8 text)") from None
