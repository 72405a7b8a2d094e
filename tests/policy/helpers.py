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
    """One rule written as TOML text, so tests go through the real file language."""
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
