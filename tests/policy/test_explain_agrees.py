"""``retention explain`` and the sweep agree item by item, over random rules, holds and items
(hypothesis): what explain decides is what a dry-run sweep reports and what a real sweep
then does; explain names a hold exactly when the hold covers the item (its custodians, its
received dates, its query as the search finds it); a purged item is explained as purged."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.helpers import init_vault, vaultctl_run

BASE = datetime(2025, 1, 1, tzinfo=UTC)
USERS = ("jane", "bob")
FOLDERS = ("INBOX", "Junk", "Sent")
WORDS = ("contract", "memo", "invoice")

RULES = {
    "junk": 'purge_after = "30d"\n[rule.match]\njunk = true\n',
    "inbox": 'keep_for = "1y"\n[rule.match]\nfolders = ["user/*/INBOX"]\n',
    "everything": 'purge_after = "90d"\nmatch = "all"\n',
    "bob": 'purge_after = "10d"\n[rule.match]\nusers = ["bob"]\n',
    "deleted": 'purge_after = "5d"\nbasis = "expunged"\n[rule.match]\nall = true\n',
    "sent": 'keep_for = "2y"\n[rule.match]\nfolders = ["user/*/Sent"]\n',
}


@dataclass(frozen=True)
class Msg:
    user: str
    folder: str
    day: int  # received BASE + day days (noon UTC)
    word: str
    expunged: bool

    @property
    def received(self) -> datetime:
        return BASE + timedelta(days=self.day, hours=12)


@dataclass(frozen=True)
class HoldSpec:
    custodians: tuple[str, ...]
    query: str | None
    date_from: int | None  # days after BASE
    date_to: int | None

    def covers(self, m: Msg) -> bool:
        """The hold rule, written out here independently of vault/policy."""
        if m.user not in self.custodians:
            return False
        day = (m.received - BASE).days
        if self.date_from is not None and day < self.date_from:
            return False
        if self.date_to is not None and day > self.date_to:
            return False
        return _query_matches(self.query, m)


QUERIES = (None, "contract", "memo OR invoice", "in:Junk", "before:2025-07-01", "-in:INBOX contract")


def _query_matches(query: str | None, m: Msg) -> bool:
    return {
        None: True,
        "contract": m.word == "contract",
        "memo OR invoice": m.word in ("memo", "invoice"),
        "in:Junk": m.folder == "Junk",
        "before:2025-07-01": m.received < datetime(2025, 7, 1, tzinfo=UTC),
        "-in:INBOX contract": m.folder != "INBOX" and m.word == "contract",
    }[query]


def _day(d: int) -> str:
    return (BASE + timedelta(days=d)).strftime("%Y-%m-%d")


messages = st.lists(
    st.builds(
        Msg,
        st.sampled_from(USERS),
        st.sampled_from(FOLDERS),
        st.integers(0, 500),
        st.sampled_from(WORDS),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)
holds = st.lists(
    st.builds(
        HoldSpec,
        st.sets(st.sampled_from(USERS), min_size=1).map(lambda s: tuple(sorted(s))),
        st.sampled_from(QUERIES),
        st.none() | st.integers(0, 300),
        st.none() | st.integers(200, 500),
    ).filter(lambda h: h.date_from is None or h.date_to is None or h.date_from <= h.date_to),
    max_size=3,
)


def _build(root: Path, msgs: list[Msg]) -> tuple[Path, dict[str, Msg]]:
    home = init_vault(root / "vault")
    by_folder: dict[tuple[str, str], list[tuple[int, Msg]]] = {}
    for n, m in enumerate(msgs):
        by_folder.setdefault((m.user, m.folder), []).append((n, m))
    for (user, folder), group in by_folder.items():
        box = root / f"{user}-{folder}"
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True)
        for n, m in group:
            path = box / "cur" / f"{n:03d}.test:2,S"
            path.write_bytes(
                f"From: x{n}@example.org\r\nSubject: {m.word} {n}\r\nMessage-ID: <agree{n}@example.org>\r\n"
                f"Date: Mon, 1 Jan 2001 00:00:00 +0000\r\n\r\n{m.word} body {n}\r\n".encode()
            )
            os.utime(path, (m.received.timestamp(), m.received.timestamp()))
        mailbox = f"user/{user}/{folder}"
        assert vaultctl_run(home, "import", str(box), "--mailbox", mailbox).code == 0
        gone = [n for n, m in group if m.expunged]
        if gone:
            for n in gone:
                (box / "cur" / f"{n:03d}.test:2,S").unlink()
            assert vaultctl_run(home, "import", str(box), "--mailbox", mailbox).code == 0
    from vault.archive import Vault
    from vault.config import Config

    items: dict[str, Msg] = {}
    with Vault.open(Config.load(home)) as vault:
        for row in vault.catalog.all_items():
            n = int(row["source_key"].split(".", 1)[0])
            items[row["item"]] = msgs[n]
    assert len(items) == len(msgs)
    return home, items


def _explained(text: str) -> tuple[str, set[str]]:
    """(the decision's action, the holds explain names) of an explanation."""
    lines = text.splitlines()
    action = lines[-1].split(":", 2)[1].strip()
    named: set[str] = set()
    if "holds:" in lines:
        for line in lines[lines.index("holds:") + 1 : -1]:
            named.add(line.strip().split(":", 1)[0])
    return action, named


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    msgs=messages,
    rule_names=st.sets(st.sampled_from(sorted(RULES))),
    hold_specs=holds,
    now_day=st.integers(0, 1000),
)
def test_explain_and_sweep_agree_item_by_item(msgs, rule_names, hold_specs, now_day):
    from vault.archive import Vault
    from vault.config import Config
    from vault.identity import ADMIN, Caller
    from vault.policy.explain import explain_item
    from vault.policy.place import place_hold
    from vault.policy.sweep import sweep

    now = BASE + timedelta(days=now_day)
    if any(m.expunged for m in msgs):  # expunged "now" by the second import: sweep after it
        now = max(now, datetime.now(UTC))
    with tempfile.TemporaryDirectory() as tmp:
        home, items = _build(Path(tmp), msgs)
        (home / "policies").mkdir(exist_ok=True)
        text = "".join(f'[[rule]]\nname = "{n}"\n{RULES[n]}\n' for n in sorted(rule_names))
        (home / "policies" / "rules.toml").write_text(text)
        with Vault.open(Config.load(home), writer=True) as vault:
            for k, h in enumerate(hold_specs):
                place_hold(
                    vault,
                    Caller("admin", "admin", frozenset({ADMIN})),
                    f"case-{k}",
                    custodians=h.custodians,
                    reason="r",
                    query=h.query,
                    date_from=_day(h.date_from) if h.date_from is not None else None,
                    date_to=_day(h.date_to) if h.date_to is not None else None,
                    force=True,  # a custodian the random items may lack
                )
            explained = {i: _explained(explain_item(vault, i, now)) for i in items}
            dry = sweep(vault, now=now, dry_run=True)
        would = {p["item"] for p in dry.purge}
        held = {h["item"]: set(h["holds"]) for h in dry.held}
        for item, m in items.items():
            action, named = explained[item]
            expected = {f"case-{k}" for k, h in enumerate(hold_specs) if h.covers(m)}
            assert named == expected, (item, m, hold_specs)
            assert (action == "purge") == (item in would), (item, m, action)
            if item in held:
                assert action == "keep" and held[item] == named
        with Vault.open(Config.load(home), writer=True) as vault:
            done = sweep(vault, now=now)
            assert {p["item"] for p in done.purge} == would
            for item in items:
                action, _ = _explained(explain_item(vault, item, now))
                assert (action == "purged") == (item in would)
