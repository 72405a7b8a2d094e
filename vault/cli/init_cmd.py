"""vaultctl init: create a vault (config with every default, signing key, empty ledger), or
with --mail-host a mail-host home (dealer and collector config only)."""

import click

from vault.cli.common import ask_new_passphrase, home_of


@click.command("init")
@click.option(
    "--mail-host",
    is_flag=True,
    help="A home for the Cyrus host: dealer and collector config only (no archive, no key, no blobs).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Write this value instead of the default (VALUE in TOML, else a string); repeatable.",
)
@click.option(
    "--encryption",
    type=click.Choice(["keyfile", "passphrase", "none"]),
    default=None,
    help="Encrypt the blob store with a key in keys/store.key (keyfile, the default), that key "
    "wrapped by a passphrase, or not at all (none).",
)
@click.pass_context
def command(ctx, mail_host, settings, encryption):
    """Create a vault in --home (or VAULT_HOME) and write its config.toml."""
    from vault.config import ConfigError, parse_settings

    home = home_of(ctx)
    try:
        overrides = parse_settings(settings)
        if mail_host:
            _init_mail_host(home, overrides)
        else:
            store = overrides.setdefault("store", {})
            if encryption or "encryption" not in store:
                store["encryption"] = encryption or "keyfile"
            if store["encryption"] == "passphrase":
                ask_new_passphrase(store)
            _init_vault(home, overrides)
    except (ConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def _init_vault(home, overrides) -> None:
    from vault.archive import Vault, VaultExists

    try:
        config = Vault.init(home, overrides)
    except VaultExists as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"vault created in {config.home}")
    click.echo(f"  config:  {config.home / 'config.toml'}")
    click.echo(
        f"  signing key: {config.path('ledger', 'key_path')} (keep it private; "
        f"{config.path('ledger', 'key_path')}.pub verifies exports)"
    )
    mode = config["store"]["encryption"]
    if mode == "none":
        click.echo(
            "  store:   NOT encrypted (--encryption none): whoever holds the blob directory or bucket "
            "reads every message, and pack names are content hashes anyone can match"
        )
    else:
        how = "wrapped by your passphrase" if mode == "passphrase" else "the key file is the secret"
        click.echo(
            f"  store key: {config.path('store', 'key_path')} (AES-256-GCM, {how}); BACK IT UP "
            "('vaultctl key export'): without it the store cannot be read"
        )


def _init_mail_host(home, overrides) -> None:
    from vault.mailhost import HomeExists, init_mail_host

    try:
        config = init_mail_host(home, overrides)
    except HomeExists as e:
        raise click.ClickException(str(e)) from None
    d = config["dealer"]
    click.echo(f"mail-host home created in {config.home} (dealer and collector; no archive)")
    click.echo(f"  config:    {config.home / 'config.toml'}")
    click.echo(
        f"  dealer:    {d['mode']} mode, spool {config.path('dealer', 'spool_path')}, ships to {d['broker']}"
    )
    click.echo(
        f"  collector: listens on {config['collector']['bind']}, reads {config['collector']['imapd_conf']}"
    )
    click.echo("  next:      vaultctl cyrus-config (the lines for imapd.conf and cyrus.conf)")
