"""Secrets out of config.toml (vault/secrets.py): where each may come from, the config written
0600, and the warning when a secret is readable by others."""

from __future__ import annotations

import os
import stat

import pytest

from tests.core.helpers import init_vault
from vault.archive import Vault
from vault.config import CONFIG_NAME, Config, ConfigError
from vault.directory import LDAP, NAME_ONLY, Directory
from vault.mailhost import init_mail_host
from vault.secrets import exposure, secret
from vault.testing.cli import vaultctl


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private_file(path, text: str):
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("make", [Vault.init, init_mail_host])
def test_config_is_written_0600_whatever_the_umask(tmp_path, make):
    old = os.umask(0o022)
    try:
        make(tmp_path / "home")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "home" / CONFIG_NAME) == 0o600


def test_each_source_in_its_order(tmp_path):
    config = Config.from_text(tmp_path, '[ldap]\nbind_password = "in-config"\n')
    assert secret(config, "ldap", "bind_password", env={}) == "in-config"
    _private_file(tmp_path / "bind.pw", "from-file-key\n")
    config.values["ldap"]["bind_password_file"] = "bind.pw"  # relative to the home
    assert secret(config, "ldap", "bind_password", env={}) == "from-file-key"
    env_file = _private_file(tmp_path / "env.pw", "from-env-file\r\n")
    env = {"VAULT_LDAP_BIND_PASSWORD_FILE": str(env_file)}
    assert secret(config, "ldap", "bind_password", env=env) == "from-env-file"
    env["VAULT_LDAP_BIND_PASSWORD"] = "from-env"
    assert secret(config, "ldap", "bind_password", env=env) == "from-env"


def test_a_missing_secret_file_is_an_error_not_an_empty_secret(tmp_path):
    config = Config.from_text(tmp_path, '[s3]\nsecret_access_key_file = "gone"\n')
    with pytest.raises(ConfigError, match=r"\[s3\] secret_access_key_file.*gone"):
        secret(config, "s3", "secret_access_key", env={})
    with pytest.raises(ConfigError, match=r"\$VAULT_S3_SECRET_ACCESS_KEY_FILE"):
        secret(
            config, "s3", "secret_access_key", env={"VAULT_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "no")}
        )


def test_a_secret_others_can_read_is_warned_about(tmp_path):
    home = init_vault(tmp_path / "v", **{"ldap.bind_password": "hunter2"})
    assert "warning" not in vaultctl(home, "ls").stderr  # 0600: the owner's alone
    (home / CONFIG_NAME).chmod(0o644)
    done = vaultctl(home, "ls")
    assert done.returncode == 0
    assert "holds [ldap] bind_password and is readable by others (mode 0644)" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr

    (home / CONFIG_NAME).chmod(0o600)
    text = (home / CONFIG_NAME).read_text().replace('bind_password = "hunter2"', 'bind_password = ""')
    text = text.replace('bind_password_file = ""', 'bind_password_file = "ldap.pw"')
    (home / CONFIG_NAME).write_text(text)
    (home / "ldap.pw").write_text("hunter2\n")
    (home / "ldap.pw").chmod(0o640)
    assert [w for w in exposure(Config.load(home)) if "ldap.pw" in w and "0640" in w]
    (home / "ldap.pw").chmod(0o600)
    assert exposure(Config.load(home)) == []
    assert "warning" not in vaultctl(home, "ls").stderr


@pytest.mark.slapd
def test_the_directory_binds_with_the_password_from_a_file(tmp_path, slapd, monkeypatch):
    pw = _private_file(tmp_path / "bind.pw", slapd.admin_password + "\n")

    def directory(home) -> Directory:
        config = Config.defaults(home)  # each its own cache (directory-cache.sqlite in the home)
        config.values["ldap"].update(url=slapd.url, base_dn=slapd.suffix, bind_dn=slapd.admin_dn)
        config.values["ldap"]["bind_password_file"] = str(pw)
        return Directory.from_config(config)

    assert directory(tmp_path / "a").resolve("alice").source == LDAP
    # the environment wins over the file: a wrong password there is what the directory uses
    monkeypatch.setenv("VAULT_LDAP_BIND_PASSWORD", "wrong")
    assert directory(tmp_path / "b").resolve("alice").source == NAME_ONLY
