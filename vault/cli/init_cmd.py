"""vaultctl init: create a vault (config with every default, signing key, empty ledger), or
with --mail-host a mail-host home (dealer and collector config only)."""

import click

from vault.cli.common import ask_new_passphrase, emit, home_of, json_option


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
@json_option
@click.pass_context
def command(ctx, mail_host, settings, encryption, as_json):
    """Create a vault in --home (or VAULT_HOME) and write its config.toml."""
    from vault.config import ConfigError, parse_settings

    home = home_of(ctx)
    try:
        overrides = parse_settings(settings)
        if mail_host:
            _init_mail_host(home, overrides, as_json)
        else:
            store = overrides.setdefault("store", {})
            if encryption or "encryption" not in store:
                store["encryption"] = encryption or "keyfile"
            if store["encryption"] == "passphrase":
                ask_new_passphrase(store)
            _init_vault(home, overrides, as_json)
    except (ConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def _init_vault(home, overrides, as_json: bool) -> None:
    from vault.archive import Vault, VaultExists

    try:
        config = Vault.init(home, overrides)
    except VaultExists as e:
        raise click.ClickException(str(e)) from None
    key = config.path("ledger", "key_path")
    found: dict = {
        "home": str(config.home),
        "config": str(config.home / "config.toml"),
        "signing_key": str(key),
    }
    text = [
        f"vault created in {config.home}",
        f"  config:  {config.home / 'config.toml'}",
        f"  signing key: {key} (keep it private; {key}.pub verifies exports)",
    ]
    mode = config["store"]["encryption"]
    found["encryption"] = mode
    if mode == "none":
        text.append(
            "  store:   NOT encrypted (--encryption none): whoever holds the blob directory or bucket "
            "reads every message, and pack names are content hashes anyone can match"
        )
    else:
        how = "wrapped by your passphrase" if mode == "passphrase" else "the key file is the secret"
        found["store_key"] = str(config.path("store", "key_path"))
        text.append(
            f"  store key: {config.path('store', 'key_path')} (AES-256-GCM, {how}); BACK IT UP "
            "('vaultctl key export'): without it the store cannot be read"
        )
    found["curve"], lines = _keys(
        config,
        [
            "on the mail host: vaultctl keys trust collector vault <worker key>",
            "                  vaultctl keys server broker <broker key>",
            "here:             vaultctl keys trust dealers mx1 <the mail host's dealer key>",
            "                  vaultctl keys server collector <the mail host's collector key>",
        ],
    )
    emit(as_json, {**found, "verifier_key": f"{key}.pub"}, text + lines)


def _keys(config, next_steps: list[str]) -> tuple[dict, list[str]]:
    """The CURVE public keys init made, and what to do with them (README, "CURVE keys")."""
    from vault.curve.keys import inventory

    made = {component: k["public_key"] for component, k in inventory(config.home)["keys"].items()}
    lines = [f"  CURVE {component + ' key:':15}{public}" for component, public in made.items()]
    lines.append("  CURVE, for two hosts (README, CURVE keys):")
    lines += [f"    {line}" for line in next_steps]
    return made, lines


def _init_mail_host(home, overrides, as_json: bool) -> None:
    from vault.mailhost import HomeExists, init_mail_host

    try:
        config = init_mail_host(home, overrides)
    except HomeExists as e:
        raise click.ClickException(str(e)) from None
    d, c, spool = config["dealer"], config["collector"], config.path("dealer", "spool_path")
    found = {
        "home": str(config.home),
        "config": str(config.home / "config.toml"),
        "role": "mail-host",
        "dealer": {"mode": d["mode"], "spool": str(spool), "broker": d["broker"]},
        "collector": {"bind": c["bind"], "imapd_conf": c["imapd_conf"]},
    }
    text = [
        f"mail-host home created in {config.home} (dealer and collector; no archive)",
        f"  config:    {config.home / 'config.toml'}",
        f"  dealer:    {d['mode']} mode, spool {spool}, ships to {d['broker']}",
        f"  collector: listens on {c['bind']}, reads {c['imapd_conf']}",
        "  next:      vaultctl cyrus-config (the lines for imapd.conf and cyrus.conf)",
    ]
    found["curve"], lines = _keys(
        config,
        [
            "on the vault host: vaultctl keys trust dealers mx1 <dealer key>",
            "                   vaultctl keys server collector <collector key>",
            "here:              vaultctl keys trust collector vault <the vault's worker key>",
            "                   vaultctl keys server broker <the vault's broker key>",
        ],
    )
    emit(as_json, found, text + lines)
