"""vaultctl init: create a vault (config with every default, signing key, empty ledger), or
with --mail-host a mail-host home (dealer and collector config only)."""

import click

from vault.cli.common import home_of


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
@click.pass_context
def command(ctx, mail_host, settings):
    """Create a vault in --home (or VAULT_HOME) and write its config.toml."""
    from vault.config import ConfigError, parse_settings

    home = home_of(ctx)
    try:
        overrides = parse_settings(settings)
        if mail_host:
            _init_mail_host(home, overrides)
        else:
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
    _echo_keys(
        config,
        [
            "on the mail host: vaultctl keys trust collector vault <worker key>",
            "                  vaultctl keys server broker <broker key>",
            "here:             vaultctl keys trust dealers mx1 <the mail host's dealer key>",
            "                  vaultctl keys server collector <the mail host's collector key>",
        ],
    )


def _echo_keys(config, next_steps: list[str]) -> None:
    """The CURVE public keys init made, and what to do with them (README, "CURVE keys")."""
    from vault.curve.keys import inventory

    for component, k in inventory(config.home)["keys"].items():
        click.echo(f"  CURVE {component + ' key:':15}{k['public_key']}")
    click.echo("  CURVE, for two hosts (README, CURVE keys):")
    for line in next_steps:
        click.echo(f"    {line}")


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
    _echo_keys(
        config,
        [
            "on the vault host: vaultctl keys trust dealers mx1 <dealer key>",
            "                   vaultctl keys server collector <collector key>",
            "here:              vaultctl keys trust collector vault <the vault's worker key>",
            "                   vaultctl keys server broker <the vault's broker key>",
        ],
    )
