"""Directory behaviour that needs no server: no directory configured, bad settings."""

import pytest

from vault.config import Config
from vault.directory import NAME_ONLY, Directory, DirectoryConfigError, LdapSettings


def test_no_url_means_name_only_and_nothing_queued(tmp_path):
    d = Directory.from_config(Config.defaults(tmp_path))
    user = d.resolve("  Jane@Example.org ")
    assert (user.id, user.login, user.source) == ("jane@example.org", "jane@example.org", NAME_ONLY)
    assert d.pending_backfill() == []
    assert d.backfill() == {}


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_empty_names_are_refused(tmp_path, name):
    d = Directory.from_config(Config.defaults(tmp_path))
    with pytest.raises(ValueError, match="not a user name"):
        d.resolve(name)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"user_filter": "(uid=alice)"}, "{name}"),
        ({"user_filter": "(uid={name}"}, "not an LDAP filter"),
        ({"id_attribute": ""}, "nsUniqueId"),
        ({"base_dn": ""}, "base_dn"),
        ({"group_membership": "members"}, "group_membership"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_settings_name_the_key(changes, message):
    values = {"url": "ldap://127.0.0.1:1", "base_dn": "dc=example,dc=org", **changes}
    with pytest.raises(DirectoryConfigError, match=r"\[ldap\].*" + message.replace("{", r"\{")):
        LdapSettings(**values)


def test_unreachable_server_is_name_only_and_queued(tmp_path):
    from vault.testing.net import free_port

    port = free_port()  # a port nobody listens on
    config = Config.defaults(tmp_path)
    config.values["ldap"].update(url=f"ldap://127.0.0.1:{port}", base_dn="dc=example,dc=org")
    d = Directory.from_config(config)
    assert d.resolve("jane").source == NAME_ONLY
    assert d.pending_backfill() == ["jane"]
