"""Who is calling, and what they may do: the caller's identity and roles, checked by the
engines (so the CLI, the local API and the web service all inherit the same rules).

A caller is an authenticated OS user: the user running ``vaultctl`` when it opens the home
itself, or the peer of the vault service's unix socket (SO_PEERCRED). The ledger records
the caller's stable directory id (vault.archive.actor_of). Roles come from ``[roles]`` in
the config: each role lists login names and ``group:<name>`` entries (LDAP groups, when a
directory is configured). Everyone else has the ``user`` role: their own folders only.

==========  ================================================================================
admin       everything
reviewer    search, export and place holds within the matters they are assigned to (their
            custodians and date ranges)
auditor     the audit trail and verification; holds and requests, but no mail
user        their own folders: search, ls, log, restore, retention explain
==========  ================================================================================

Which mail each role reads is vault/access.py's (the one place both the service and the
commands that open the home themselves ask).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass, replace

from vault.config import Config

ADMIN, REVIEWER, AUDITOR, USER = "admin", "reviewer", "auditor", "user"
ROLES = (ADMIN, REVIEWER, AUDITOR, USER)
_CONFIG_KEYS = {ADMIN: "admins", REVIEWER: "reviewers", AUDITOR: "auditors"}


class Forbidden(PermissionError):
    """The caller's roles do not allow this; the engine records the refusal."""

    def __init__(self, caller: Caller, action: str, why: str):
        super().__init__(f"{caller.login} may not {action}: {why}")
        self.caller, self.action, self.why = caller, action, why


@dataclass(frozen=True)
class Caller:
    login: str  # the authenticated OS user
    actor: str  # what the ledger records: the login's directory id (or the login), always
    roles: frozenset[str]
    on_behalf_of: str | None = None  # the person an admin acts for (--actor): recorded beside actor
    groups: tuple[str, ...] = ()  # the login's directory groups when its roles were given

    def has(self, role: str) -> bool:
        return role in self.roles

    def require(self, action: str, *roles: str) -> None:
        """Raise Forbidden unless the caller has one of ``roles`` (admin always may)."""
        if ADMIN in self.roles or any(r in self.roles for r in roles):
            return
        wanted = " or ".join((ADMIN, *roles))
        raise Forbidden(self, action, f"needs the {wanted} role (has {', '.join(sorted(self.roles))})")

    def audit_fields(self) -> dict:
        """Entry data naming who acted for whom, when an admin acts for someone else."""
        return {"on_behalf_of": self.on_behalf_of} if self.on_behalf_of else {}


def login_of_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (containers)
        return f"uid:{uid}"


def roles_of(config: Config, login: str, groups: Iterable[str] = ()) -> frozenset[str]:
    """The roles ``[roles]`` gives ``login`` (directly or through one of its groups)."""
    names = {login.lower(), *(f"group:{g.lower()}" for g in groups)}
    section = config["roles"]
    roles = {USER}
    for role, key in _CONFIG_KEYS.items():
        if names & {entry.lower() for entry in section[key]}:
            roles.add(role)
    return frozenset(roles)


def directory_groups(config: Config, login: str) -> tuple[str, ...]:
    """``login``'s LDAP groups (none without a directory, or for a name it does not know)."""
    if not config["ldap"]["url"]:
        return ()
    from vault.directory import LDAP, Directory

    directory = Directory.from_config(config)
    try:
        user = directory.resolve(login)
    finally:
        directory.close()
    return tuple(user.groups) if user.source == LDAP else ()


def caller_of(config: Config, login: str, *, acting_for: str | None = None, owner: bool = False) -> Caller:
    """The caller ``login``, with its directory id and roles. ``owner``: the caller is the user
    the vault runs as (the service's own uid), who owns every file of the home and so is an
    admin whatever [roles] says. ``acting_for`` (``--actor``) is refused unless the caller is
    an admin; then the ledger records both: the admin as the actor, the person acted for as
    ``on_behalf_of``."""
    from vault.archive import actor_of

    groups = directory_groups(config, login)
    roles = roles_of(config, login, groups) | ({ADMIN} if owner else set())
    caller = Caller(login, actor_of(config, login), frozenset(roles), groups=groups)
    if acting_for and acting_for != login:
        caller.require(f"act for {acting_for!r} (--actor)")
        return replace(caller, on_behalf_of=actor_of(config, acting_for))
    return caller


def rechecked(config: Config, caller: Caller, groups: Iterable[str] | None = None) -> Caller:
    """``caller`` (no owner, acting for nobody: a web session's) with the roles ``[roles]``
    gives them now (it may have been reloaded since, SIGHUP), from ``groups`` (read afresh
    from the directory) or the groups they had."""
    groups = caller.groups if groups is None else tuple(groups)
    roles = roles_of(config, caller.login, groups)
    if roles == caller.roles and groups == caller.groups:
        return caller
    return replace(caller, roles=roles, groups=groups)


def local_caller(config: Config, *, acting_for: str | None = None) -> Caller:
    """The user running this process (it opened the home itself: the OS let it); the owner of
    the home is its admin."""
    uid = os.getuid()
    try:
        owner = config.home.stat().st_uid == uid
    except OSError:
        owner = False
    return caller_of(config, login_of_uid(uid), acting_for=acting_for, owner=owner)
