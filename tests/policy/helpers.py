"""Small builders for policy tests."""

from datetime import UTC, datetime

from vault.policy.rules import ItemFacts, parse_rules

UTC = UTC


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


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
