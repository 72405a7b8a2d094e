"""One meaning for dates (vault/dates.py): search, holds and erasure filter on the received
(internal) date, bare dates in the site's zone; a hold placed with a query and dates covers
exactly what the same search finds. Over messages whose Date: header and delivery date
differ, around midnight in Europe/Berlin (UTC+1 in winter)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.core.helpers import init_vault, vaultctl_run
from tests.policy.helpers import TWO_ADMINS

# Berlin's 1 February 2026 is 2026-01-31T23:00Z .. 2026-02-01T23:00Z
FEB1 = (datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 1, 23, tzinfo=UTC))
RECEIVED = [  # (received, subject); the Date: header of each is a year away from it
    (datetime(2026, 1, 31, 22, 30, tzinfo=UTC), "contract early"),  # 23:30 on 31 January in Berlin
    (datetime(2026, 1, 31, 22, 59, 59, tzinfo=UTC), "contract edge"),  # one second before Berlin's 1 Feb
    (datetime(2026, 1, 31, 23, 0, 0, tzinfo=UTC), "contract start"),  # Berlin's 1 Feb, 00:00
    (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "memo start"),
    (datetime(2026, 2, 1, 12, 0, tzinfo=UTC), "contract noon"),
    (datetime(2026, 2, 1, 22, 59, 59, tzinfo=UTC), "contract late"),  # Berlin 23:59:59 on 1 Feb
    (datetime(2026, 2, 1, 23, 0, 0, tzinfo=UTC), "contract next"),  # Berlin's 2 Feb
    (datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "contract march"),
]


def _message(n: int, subject: str, sent: datetime) -> bytes:
    return (
        f"From: a{n}@example.org\r\nTo: erin@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <dates{n}@example.org>\r\nDate: {sent.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


def _maildir(root: Path, messages: list[tuple[datetime, bytes]]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n, (received, data) in enumerate(messages):
        path = root / "cur" / f"{n}.test:2,S"
        path.write_bytes(data)
        os.utime(path, (received.timestamp(), received.timestamp()))  # the internal date
    return root


@pytest.fixture
def vault(tmp_path):
    """erin's INBOX and bob's INBOX hold the same messages (one blob each, two copies); the
    Date: headers are a year before the delivery (received) dates."""
    home = init_vault(tmp_path / "vault", **{"site.timezone": "Europe/Berlin", **TWO_ADMINS})
    messages = [(r, _message(n, s, r - timedelta(days=365))) for n, (r, s) in enumerate(RECEIVED)]
    for user in ("erin", "bob"):
        box = _maildir(tmp_path / user, messages)
        assert vaultctl_run(home, "import", str(box), "--mailbox", f"user/{user}/INBOX").code == 0
    return home


def _items(home, query: str) -> set[str]:
    found = vaultctl_run(home, "search", query, "--json", "--limit", "1000")
    assert found.code == 0, found
    return {i for h in json.loads(found.out)["hits"] for i in h["item_ids"]}


def _subjects(home, items: set[str]) -> set[str]:
    log = json.loads(vaultctl_run(home, "log", "--mailbox", "user/erin/INBOX", "--json").out)
    uids = {e["item"]: int(e["item"].rsplit(":", 1)[1]) for e in log if e["kind"] == "message.appended"}
    return {RECEIVED[uids[i] - 1][1] for i in items}  # the import gives UIDs in file order


def _held(home, matter: str) -> set[str]:
    """The items ``matter`` covers: a sweep (dry run) of a rule purging everything keeps them."""
    swept = vaultctl_run(home, "retention", "sweep", "--dry-run", "--json", "--now", "2100-01-01T00:00Z")
    assert swept.code == 0, swept
    return {h["item"] for h in json.loads(swept.out)["held"] if matter in h["holds"]}


def _purge_everything(home) -> None:
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "all.toml").write_text('[[rule]]\nname = "all"\npurge_after = "1d"\nmatch = "all"\n')


def test_search_dates_are_the_received_date_in_the_site_zone(vault):
    feb1 = {"contract start", "memo start", "contract noon", "contract late"}
    assert _subjects(vault, _items(vault, "custodian:erin on:2026-02-01")) == feb1
    assert _subjects(vault, _items(vault, "custodian:erin after:2026-02-01 before:2026-02-02")) == feb1
    # the instant, with its zone, wins over the site's
    assert _subjects(vault, _items(vault, "custodian:erin before:2026-01-31T23:00:00Z")) == {
        "contract early",
        "contract edge",
    }
    # Berlin's 1 February begins at 23:00 on the UTC day 31 January
    assert _subjects(vault, _items(vault, "custodian:erin on:2026-01-31Z")) == {
        "contract early",
        "contract edge",
        "contract start",
        "memo start",
    }
    # the Date: header is a year earlier: sent: finds what the header says, received dates nothing then
    assert _subjects(vault, _items(vault, "custodian:erin sent:2025-02-01")) == feb1
    assert _items(vault, "custodian:erin on:2025-02-01") == set()
    # NOT and OR over the received date, per copy
    assert _subjects(vault, _items(vault, "custodian:erin contract -before:2026-02-02")) == {
        "contract next",
        "contract march",
    }
    assert _subjects(vault, _items(vault, "custodian:erin (on:2026-03-01 OR memo)")) == {
        "memo start",
        "contract march",
    }
    status = json.loads(vaultctl_run(vault, "status", "--json").out)
    assert status["timezone"] == "Europe/Berlin"


def test_a_hold_with_the_searchs_query_and_dates_covers_exactly_its_hits(vault):
    _purge_everything(vault)
    placed = vaultctl_run(
        vault,
        "hold",
        "create",
        "case-43",
        "--custodian",
        "erin",
        "--query",
        "contract",
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-01",
        "--reason",
        "litigation",
    )
    assert placed.code == 0, placed
    hits = _items(vault, "custodian:erin contract after:2026-02-01 before:2026-02-02")
    assert _subjects(vault, hits) == {"contract start", "contract noon", "contract late"}
    assert _held(vault, "case-43") == hits
    # explain names the hold exactly where it covers the item, and the sweep agrees
    for item in _items(vault, "custodian:erin"):
        text = vaultctl_run(vault, "retention", "explain", item, "--now", "2100-01-01T00:00Z").out
        assert ("case-43" in text) == (item in hits), text
        assert text.splitlines()[-1].startswith("decision: keep" if item in hits else "decision: purge")
    # the same dates as an on: term, and through the Python API
    from vault.archive import Vault
    from vault.config import Config
    from vault.index.matcher import matching_items
    from vault.policy.decide import policy_of

    with Vault.open(Config.load(vault)) as v:
        policy = policy_of(v)
        covered = {
            r["item"]
            for r in v.catalog.all_items()
            if [h.matter for h in policy.decide(policy.facts(v, r), datetime.now(UTC)).holds] == ["case-43"]
        }
        assert covered == hits == matching_items(v, "custodian:erin contract on:2026-02-01")


def test_a_hold_by_sent_date_in_its_query_is_the_search_by_sent_date(vault):
    _purge_everything(vault)
    query = "sentbefore:2025-02-01"
    placed = vaultctl_run(
        vault, "hold", "create", "m-2", "--custodian", "erin", "--query", query, "--reason", "r"
    )
    assert placed.code == 0, placed
    hits = _items(vault, f"custodian:erin {query}")
    assert _subjects(vault, hits) == {"contract early", "contract edge"}  # the header is Berlin's 31 Jan 2025
    assert _held(vault, "m-2") == hits


def test_an_erasure_by_query_takes_the_same_dates(vault):
    dry = vaultctl_run(vault, "erase", "--query", "custodian:bob on:2026-02-01", "--dry-run", "--json")
    assert dry.code == 0, dry
    asked = {i["item"] for i in json.loads(dry.out)["items"]}
    assert asked == _items(vault, "custodian:bob after:2026-02-01 before:2026-02-02") and len(asked) == 4


def test_bad_dates_and_zones_are_one_line_errors(vault, tmp_path):
    bad = vaultctl_run(vault, "search", "on:2026-02-30")
    assert bad.code != 0 and "day is out of range" in bad.err and "Traceback" not in bad.err
    held = vaultctl_run(vault, "hold", "create", "x", "--custodian", "erin", "--to", "soon", "--reason", "r")
    assert held.code != 0 and "'soon' is not a date" in held.err
    backwards = vaultctl_run(
        vault,
        "hold",
        "create",
        "y",
        "--custodian",
        "erin",
        "--from",
        "2026-02-02",
        "--to",
        "2026-02-01",
        "--reason",
        "r",
    )
    assert backwards.code != 0 and "starts after it ends" in backwards.err
    other = init_vault(tmp_path / "other", **{"site.timezone": "Mars/Olympus"})
    refused = vaultctl_run(other, "search", "on:2026-02-01")
    assert refused.code != 0 and "'Mars/Olympus' is not a time zone" in refused.err
