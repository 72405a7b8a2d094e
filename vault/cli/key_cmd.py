"""vaultctl key: the store's master key (vault/store/keys.py): show, change-passphrase,
export (a file or paper backup), import (put a backup back)."""

from __future__ import annotations

import os
import sys

import click

from vault.cli.common import emit, json_option, load_config, print_json


@click.group("key")
def command():
    """The blob store's encryption key: back it up, change its passphrase, put it back."""


@command.command("show")
@json_option
@click.pass_context
def show(ctx, as_json):
    """The key's mode, cipher, key id and KDF (never the key)."""
    from vault.store.keys import describe

    print_json(describe(load_config(ctx)))


def _new_passphrase(new_file: str | None) -> str:
    if new_file:
        try:
            with open(new_file, encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise click.ClickException(f"cannot read the new passphrase in {new_file}: {e}") from None
    if os.environ.get("VAULT_STORE_NEW_PASSPHRASE"):
        return os.environ["VAULT_STORE_NEW_PASSPHRASE"]
    if not sys.stdin.isatty():
        raise click.ClickException(
            "no new passphrase: give --new-passphrase-file or $VAULT_STORE_NEW_PASSPHRASE"
        )
    return click.prompt("new store passphrase", hide_input=True, confirmation_prompt=True, err=True)


@command.command("change-passphrase")
@click.option(
    "--new-passphrase-file",
    type=click.Path(dir_okay=False),
    help="Read the new passphrase from this file (else $VAULT_STORE_NEW_PASSPHRASE, else a prompt).",
)
@json_option
@click.pass_context
def change_passphrase(ctx, new_passphrase_file, as_json):
    """Wrap the key under a new passphrase (the old one from the usual places); no data is rewritten."""
    from vault.store import keys

    config = load_config(ctx)
    done = keys.change_passphrase(config, keys.passphrase(config), _new_passphrase(new_passphrase_file))
    emit(as_json, done, f"passphrase changed for key {done['key_id']} ({done['path']}); export a new backup")


@command.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--paper", is_flag=True, help="Lines to print and type back in, each with its own check.")
@json_option
@click.pass_context
def export(ctx, file, paper, as_json):
    """Write a backup of the key to FILE (0600, never over a file) or stdout. A passphrase-
    protected key stays wrapped; a keyfile key is the secret itself: keep it apart from the store."""
    from vault.store.keys import export_text

    text = export_text(load_config(ctx), paper=paper)
    if not file:
        emit(as_json, {"key": text}, text.rstrip("\n"))
        return
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise click.ClickException(f"{file}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    emit(as_json, {"exported": file}, f"key exported to {file}")


@command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_context
def import_(ctx, file, as_json):
    """Put an exported key (file or paper form) back as the home's key, once it opens the store."""
    from vault.store.backends import open_backend
    from vault.store.keys import import_key

    config = load_config(ctx)
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{file}: {e}") from None
    done = import_key(config, text, file, open_backend(config))
    emit(as_json, done, f"key {done['key_id']} ({done['mode']}) installed at {done['path']}")
