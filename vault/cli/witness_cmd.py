"""vaultctl witness: run a cosigning witness for vault ledgers (vault/witness/server.py).

The witness lives outside every vault home, ideally on another host and as another user:
``init DIR --name NAME`` makes its key, ``trust DIR KEY.pub`` lets it witness a vault's ledger,
``serve DIR --listen unix:PATH|HOST:PORT`` answers C2SP add-checkpoint, ``status DIR`` shows
the newest checkpoint it cosigned per ledger.
"""

from __future__ import annotations

import sys

import click

from vault.cli.common import emit, json_option, print_json

WITNESS_DIR = click.Path(file_okay=False)


@click.group("witness")
def command():
    """A cosigning witness for vault ledgers (its own key and state, outside the home)."""


@command.command("init")
@click.argument("directory", type=WITNESS_DIR)
@click.option("--name", required=True, help="The witness's key name, a schema-less URL (witness.example/w1).")
@json_option
def init(directory, name, as_json):
    """Create a witness directory and its key; print the verifier key for the vault's config."""
    from vault.witness.server import WitnessError, init_witness

    try:
        vkey = init_witness(directory, name)
    except WitnessError as e:
        raise click.ClickException(str(e)) from None
    text = [
        f"witness created in {directory}",
        f"  cosigner key: {vkey}",
        "  next: vaultctl witness trust DIR <vault home>/keys/ledger.ed25519.pub, then in the",
        f"  vault: --set 'witness.cosigners=[\"<url> {vkey}\"]'",
    ]
    emit(as_json, {"directory": directory, "name": name, "key": vkey}, text)


@command.command("trust")
@click.argument("directory", type=WITNESS_DIR)
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False))
@json_option
def trust_key(directory, key_file, as_json):
    """Witness the ledger signed by KEY_FILE (a vault's keys/ledger.ed25519.pub)."""
    from vault.witness.server import WitnessError, trust

    try:
        with open(key_file, encoding="utf-8") as f:
            target = trust(directory, f.read())
    except (WitnessError, OSError, UnicodeDecodeError) as e:
        raise click.ClickException(str(e)) from None
    emit(as_json, {"trusted": target}, f"trusted: {target}")


@command.command("serve")
@click.argument("directory", type=WITNESS_DIR)
@click.option(
    "--listen",
    required=True,
    help="unix:PATH (mode 0666: the checkpoint's signature is the only credential) or HOST:PORT.",
)
@json_option
def serve_cmd(directory, listen, as_json):
    """Answer add-checkpoint (POST /add-checkpoint) until SIGTERM (--json: the ready line as JSON)."""
    from vault.witness.server import Witness, WitnessError, serve

    try:
        witness = Witness(directory)
        ready = {"witness": witness.name, "listen": listen}
        serve(
            witness,
            listen,
            ready=lambda: emit(as_json, ready, f"witness {witness.name} listening on {listen}"),
        )
    except (WitnessError, OSError) as e:
        raise click.ClickException(str(e)) from None
    sys.stdout.flush()


@command.command("status")
@click.argument("directory", type=WITNESS_DIR)
@click.option("--json", "as_json", is_flag=True)
def status(directory, as_json):
    """The newest checkpoint cosigned for each trusted ledger."""
    from vault.witness.server import Witness, WitnessError

    try:
        witness = Witness(directory)
    except WitnessError as e:
        raise click.ClickException(str(e)) from None
    rows = witness.status()
    if as_json:
        print_json({"name": witness.name, "key": witness.vkey, "logs": rows})
        return
    click.echo(f"witness {witness.name}")
    for row in rows:
        click.echo(f"  {row['origin']}: size {row['size']} root {(row['root'] or '-')[:16]}")
