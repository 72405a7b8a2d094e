"""``Directory.authenticate``: the web service's login, an LDAP bind as the user's own entry,
against the real slapd (tests/servers/slapd.py)."""

import pytest
from ldap3.core.exceptions import LDAPException

from tests.directory.test_directory import directory
from vault.directory import LDAP

pytestmark = pytest.mark.slapd


@pytest.fixture
def lena(slapd):
    if not slapd.admin().search(slapd.people, "(uid=lena)"):
        dn = slapd.add_user("lena", "Lena Login", ["lena@feas.local"], userPassword="lena-pw")
        slapd.add_to_group("legal", dn)
    return slapd


def test_the_right_password_binds_and_gives_the_user_with_groups(tmp_path, lena):
    d = directory(tmp_path, lena)
    user = d.authenticate("lena", "lena-pw")
    assert user is not None and user.source == LDAP and user.login == "lena"
    assert user.groups == ("legal",) and user.id == lena.entry_uuid(f"uid=lena,{lena.people}")
    assert d.authenticate("LENA@feas.local", "lena-pw") == user  # by address too
    d.close()


def test_wrong_empty_or_unknown_is_none(tmp_path, lena):
    d = directory(tmp_path, lena)
    assert d.authenticate("lena", "wrong") is None
    assert d.authenticate("lena", "") is None  # never an unauthenticated bind
    assert d.authenticate("nobody-here", "lena-pw") is None
    assert d.authenticate("*", "lena-pw") is None  # filter characters are escaped
    d.close()


def test_an_unreachable_directory_raises_not_none(tmp_path, lena):
    d = directory(tmp_path, lena, url="ldap://127.0.0.1:1", timeout_seconds=1.0)
    with pytest.raises(LDAPException):
        d.authenticate("lena", "lena-pw")
    d.close()
