"""A mail-host home: the configuration of the dealer and the collector, and nothing else.

The Cyrus host runs the dealer and the collector (docs/architecture.md section 5); it holds
no archive, no ledger key and no blob store. ``vaultctl init --mail-host`` writes its
``config.toml`` with ``[home] role = "mail-host"`` and every key of ``[dealer]`` and
``[collector]``; vault-host commands refuse such a home (``Config.require_vault``).

The Cyrus admin password the collector needs is not written here: it comes from
``VAULT_COLLECTOR_PASSWORD``, the file ``VAULT_COLLECTOR_PASSWORD_FILE`` names
(deploy/systemd/vault-collector.service passes a systemd credential), or the file
``[collector] imap_password_file`` names (vault/secrets.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

from vault.config import CONFIG_NAME, DEFAULTS, MAIL_HOST, MAIL_HOST_SECTIONS, Config, render, write_new
from vault.curve.keys import init_home_keys

HEADER = """\
# vault mail-host configuration (vaultctl init --mail-host): the dealer and the collector only.
# Every key shown with its value; see docs/architecture.md sections 4.2 and 5.
# The Cyrus admin's password is not kept here: the collector reads VAULT_COLLECTOR_PASSWORD,
# the file VAULT_COLLECTOR_PASSWORD_FILE names (vault-collector.service: a credential), or the
# file imap_password_file names."""


PASSWORD_HINT = (
    "set VAULT_COLLECTOR_PASSWORD, VAULT_COLLECTOR_PASSWORD_FILE or collector.imap_password_file "
    "to a file holding it"
)


class HomeExists(Exception):
    pass


def mail_host_values(overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """The sections a mail-host home configures, with their defaults (the password left out),
    then ``overrides`` (section -> key -> value, checked like config.toml)."""
    values = {section: copy.deepcopy(DEFAULTS[section]) for section in MAIL_HOST_SECTIONS}
    del values["collector"]["imap_password"]
    for section, table in (overrides or {}).items():
        if section not in values:
            raise ValueError(f"a mail-host home has no [{section}] (only {', '.join(MAIL_HOST_SECTIONS)})")
        if section == "collector" and "imap_password" in table:
            raise ValueError("the collector's password is not kept in config.toml: " + PASSWORD_HINT)
        values[section].update(table)
    values["home"]["role"] = MAIL_HOST
    return values


def init_mail_host(home: Path | str, overrides: dict[str, dict] | None = None) -> Config:
    """Write a mail-host ``config.toml`` in ``home``; return the loaded config."""
    home = Path(home)
    file = home / CONFIG_NAME
    if file.exists():
        raise HomeExists(f"{file} exists: this home is already set up")
    text = render(mail_host_values(overrides), header=HEADER)
    config = Config.from_text(home, text)  # refuses a bad override before anything is written
    home.mkdir(parents=True, exist_ok=True)
    write_new(file, text)
    init_home_keys(home, MAIL_HOST)  # the dealer's and the collector's CURVE keys (vault/curve/)
    return config
