"""Callers and roles: [roles] names logins and LDAP groups; everyone else is a user; only an
admin may act for someone else, and then both are recorded."""

from __future__ import annotations

import copy

import pytest

from vault.config import DEFAULTS, Config
from vault.identity import ADMIN, AUDITOR, REVIEWER, USER, Forbidden, caller_of, roles_of


def config(tmp_path, **roles) -> Config:
    values = copy.deepcopy(DEFAULTS)
    values["roles"].update(roles)
    return Config(tmp_path, values)


def test_roles_come_from_logins_and_groups(tmp_path):
    c = config(tmp_path, admins=["root", "group:Vault-Admins"], reviewers=["rita"], auditors=["group:audit"])
    assert roles_of(c, "root") == {ADMIN, USER}
    assert roles_of(c, "ROOT") == {ADMIN, USER}  # names compare case-insensitively
    assert roles_of(c, "ann", groups=["vault-admins"]) == {ADMIN, USER}
    assert roles_of(c, "rita") == {REVIEWER, USER}
    assert roles_of(c, "otto", groups=["Audit"]) == {AUDITOR, USER}
    assert roles_of(c, "jane", groups=["staff"]) == {USER}


def test_require_lets_admins_and_the_named_roles_through(tmp_path):
    c = config(tmp_path, reviewers=["rita"])
    caller_of(c, "root").require("search", REVIEWER)
    caller_of(c, "rita").require("search", REVIEWER)
    with pytest.raises(Forbidden, match=r"jane may not verify: needs the admin or auditor role \(has user\)"):
        caller_of(c, "jane").require("verify", AUDITOR)


def test_only_an_admin_acts_for_someone_else_and_both_are_recorded(tmp_path):
    c = config(tmp_path)
    with pytest.raises(Forbidden, match="jane may not act for 'legal-office'"):
        caller_of(c, "jane", acting_for="legal-office")
    acting = caller_of(c, "root", acting_for="legal-office")
    assert acting.actor == "root" and acting.on_behalf_of == "legal-office"
    assert acting.audit_fields() == {"on_behalf_of": "legal-office"}
    assert caller_of(c, "jane", acting_for="jane").on_behalf_of is None  # oneself is no proxy
