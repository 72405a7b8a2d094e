"""Small builders for policy tests."""

from datetime import UTC, datetime

from vault.policy.rules import ItemFacts, parse_rules

UTC = UTC


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime:
    """A time in UTC."""
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def item(folder="user/jane/INBOX", user="jane", internal_date=at(2024, 1, 1), **extra) -> ItemFacts:
    return ItemFacts(
        item_id=extra.pop("item_id", "mbox-1:1:1"),
        folder=folder,
        user=user,
        internal_date=internal_date,
        **extra,
    )


def rules(text: str, source: str = "test.toml"):
    return parse_rules(text, source)


def rule(name="r", action="keep_for", duration="1y", basis=None, **match):
    """One rule written as TOML text, so tests go through the real file language. With no
    match keys it matches every item, said explicitly (``all = true``)."""
    match = match or {"all": True}
    lines = ["[[rule]]", f'name = "{name}"', f'{action} = "{duration}"']
    if basis:
        lines.append(f'basis = "{basis}"')
    if match:
        lines.append("[rule.match]")
        for key, value in match.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            else:
                quoted = ", ".join('"' + v.replace("\\", "\\\\") + '"' for v in value)
                lines.append(f"{key} = [{quoted}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- four eyes

SECOND_ADMIN = "ann"
TWO_ADMINS = {"roles.admins": ["root", SECOND_ADMIN]}
"""init_vault settings: the tests run as root; ann is the second admin, who approves
through the engine API (a Caller from vault.identity.caller_of, no second OS user)."""


def as_login(home, login: str = SECOND_ADMIN):
    """The Caller ``login`` of the vault at ``home``."""
    from vault.config import Config
    from vault.identity import caller_of

    return caller_of(Config.load(home), login)


def request_id(result) -> str:
    """The request id a ``vaultctl erase ... --json`` or ``hold release ... --json`` printed."""
    import json

    assert result.code == 0, result
    return json.loads(result.out)["request"]


def approve_erasure_as(home, rid: str, login: str = SECOND_ADMIN) -> dict:
    from vault.archive import Vault
    from vault.config import Config
    from vault.policy.erase import approve_erasure

    with Vault.open(Config.load(home), writer=True) as vault:
        return approve_erasure(vault, as_login(home, login), rid)


def approve_release_as(home, rid: str, login: str = SECOND_ADMIN):
    from vault.archive import Vault
    from vault.config import Config
    from vault.policy.place import approve_release

    with Vault.open(Config.load(home)) as vault:
        return approve_release(vault, as_login(home, login), rid)


def erase(home, *args: str) -> dict:
    """``vaultctl erase ARGS`` requested by root through the CLI, approved by ann: the certificate."""
    from tests.core.helpers import vaultctl_run

    rid = request_id(vaultctl_run(home, "erase", *args, "--reason", "test erasure", "--json", "--yes"))
    return approve_erasure_as(home, rid)


def release(home, matter: str, *extra: str):
    """Release hold ``matter``: requested by root through the CLI, approved by ann."""
    from tests.core.helpers import vaultctl_run

    rid = request_id(
        vaultctl_run(home, "hold", "release", matter, "--reason", "test release", "--json", *extra)
    )
    return approve_release_as(home, rid)


def ledger_entries(home, *kinds: str) -> list:
    """The committed ledger entries of these kinds (all kinds when none are given)."""
    from vault.archive import Vault
    from vault.config import Config

    with Vault.open(Config.load(home)) as vault:
        return [e for e in vault.ledger.entries() if not kinds or e.kind in kinds]
