"""``Directory.authenticate``: the web service's login, an LDAP bind as the user's own entry,
against the real slapd (tests/servers/slapd.py)."""

import pytest
from ldap3.core.exceptions import LDAPException

from tests.directory.test_directory import directory
from vault.directory import LDAP

pytestmark = pytest.mark.slapd


@pytest.fixture
def erin(slapd):
    if not slapd.admin().search(slapd.people, "(uid=erin)"):
        dn = slapd.add_user("erin", "Erin Login", ["erin@feas.local"], userPassword="erin-pw")
        slapd.add_to_group("legal", dn)
    return slapd


def test_the_right_password_binds_and_gives_the_user_with_groups(tmp_path, erin):
    d = directory(tmp_path, erin)
    user = d.authenticate("erin", "erin-pw")
    assert user is not None and user.source == LDAP and user.login == "erin"
    assert user.groups == ("legal",) and user.id == erin.entry_uuid(f"uid=erin,{erin.people}")
    assert d.authenticate("ERIN@feas.local", "erin-pw") == user  # by address too
    d.close()


def test_wrong_empty_or_unknown_is_none(tmp_path, erin):
    d = directory(tmp_path, erin)
    assert d.authenticate("erin", "wrong") is None
    assert d.authenticate("erin", "") is None  # never an unauthenticated bind
    assert d.authenticate("nobody-here", "erin-pw") is None
    assert d.authenticate("*", "erin-pw") is None  # filter characters are escaped
    d.close()


def test_an_unreachable_directory_raises_not_none(tmp_path, erin):
    d = directory(tmp_path, erin, url="ldap://127.0.0.1:1", timeout_seconds=1.0)
    with pytest.raises(LDAPException):
        d.authenticate("erin", "erin-pw")
    d.close()
