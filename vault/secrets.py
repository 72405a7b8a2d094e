"""The secrets a vault needs, and the one place that knows where each may come from.

A secret is a config key listed in ``SECRETS``: the S3 keys, the LDAP bind password, the Cyrus
admin's password (the collector's), the store passphrase. Each is taken from the first of these that is set:

1. the environment: ``$VAULT_<SECTION>_<KEY>`` (e.g. ``VAULT_LDAP_BIND_PASSWORD``);
2. a file the environment names: ``$VAULT_<SECTION>_<KEY>_FILE`` (a systemd credential:
   ``LoadCredential=`` and ``Environment=VAULT_..._FILE=%d/<name>``);
3. a file the config names: ``<key>_file`` in the same section (relative to the home);
4. the config key itself, which works but is what ``exposure()`` warns about when
   ``config.toml`` is readable by anyone but its owner.

A secret file is read whole, without its final newline; one that cannot be read is a
``ConfigError`` naming it, never an empty secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from vault.config import CONFIG_NAME, Config, ConfigError

# (section, key) -> the environment variable that may carry it
SECRETS: dict[tuple[str, str], str] = {
    ("s3", "access_key_id"): "VAULT_S3_ACCESS_KEY_ID",
    ("s3", "secret_access_key"): "VAULT_S3_SECRET_ACCESS_KEY",
    ("ldap", "bind_password"): "VAULT_LDAP_BIND_PASSWORD",
    ("collector", "imap_password"): "VAULT_COLLECTOR_PASSWORD",
    ("store", "passphrase"): "VAULT_STORE_PASSPHRASE",
}
FILE_SUFFIX = "_file"


def file_key(key: str) -> str:
    """The config key naming a file that holds ``key``'s secret."""
    return key + FILE_SUFFIX


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read the secret in {path}: {e}") from None


def secret(config: Config, section: str, key: str, env: Mapping[str, str] | None = None) -> str:
    """The value of secret ``[section] key`` ("" when none is given anywhere)."""
    name = SECRETS[(section, key)]
    env = os.environ if env is None else env
    if env.get(name):
        return env[name]
    if env.get(name + "_FILE"):
        return _read(Path(env[name + "_FILE"]), f"${name}_FILE")
    values = config[section]
    if values.get(file_key(key)):
        return _read(config.path(section, file_key(key)), f"[{section}] {file_key(key)}")
    return values.get(key, "")


def resolved(config: Config, section: str, env: Mapping[str, str] | None = None) -> dict:
    """``[section]`` with each of its secrets resolved and the ``*_file`` keys gone: what the
    component it configures takes as keyword arguments."""
    out = {
        k: v
        for k, v in config[section].items()
        if not (k.endswith(FILE_SUFFIX) and (section, k[: -len(FILE_SUFFIX)]) in SECRETS)
    }
    for sec, key in SECRETS:
        if sec == section:
            out[key] = secret(config, section, key, env)
    return out


def _readable_by_others(path: Path) -> int | None:
    """The file's mode when group or others may read it, else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return stat.S_IMODE(mode) if mode & (stat.S_IRGRP | stat.S_IROTH) else None


def exposure(config: Config) -> list[str]:
    """Warnings, one per secret readable by more than its owner: a secret written into a
    config.toml others can read, or a secret file others can read."""
    warnings = []
    config_file = config.home / CONFIG_NAME
    config_mode = _readable_by_others(config_file)
    for section, key in SECRETS:
        values = config.values.get(section, {})
        if values.get(key) and config_mode is not None:
            warnings.append(
                f"{config_file} holds [{section}] {key} and is readable by others "
                f"(mode {config_mode:04o}): chmod 600 it, or move the secret to "
                f"{file_key(key)} or ${SECRETS[(section, key)]}"
            )
        if values.get(file_key(key)):
            path = config.path(section, file_key(key))
            mode = _readable_by_others(path)
            if mode is not None:
                warnings.append(
                    f"{path} ([{section}] {file_key(key)}) is readable by others (mode {mode:04o}): chmod 600 it"
                )
    return warnings
