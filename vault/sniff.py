"""SNIFF: each user's mail per week beside the site's median (the web service's dashboard).

Per user (a folder's custodian, ``user/<u>/...``) and per ISO week of arrival (the internal
date, else the time it was archived), over the messages received: every archived message in
the user's folders except those in Sent, Drafts, Outbox and Templates, counted once per user
however many of their folders hold a copy. For each week:

- ``received``: how many;
- ``spam``: the share marked spam: ``X-Spam-Flag: YES`` / ``X-Spam-Status: Yes`` in its
  headers, or sitting in a Junk or Spam folder;
- ``large``: the share above ``[web] large_message_bytes``;
- ``volume``: their total size in bytes.

The site median of a week is taken over the users who received mail that week. A message's
spam verdict is read from its header block once and cached in ``[web] sniff_cache_path``
(blob -> verdict: a blob's headers never change); a purged message counts with what its
catalog row and the cache still say.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vault.model import custodian_of, format_time, now, parse_time

FIGURES = ("received", "spam", "large", "volume")
NOT_RECEIVED = ("sent", "sent items", "sent messages", "drafts", "outbox", "templates")
JUNK = ("junk", "spam", "junk e-mail", "junk email")


@dataclass
class Week:
    start: date  # the Monday
    received: int = 0
    spam: int = 0
    large: int = 0
    volume: int = 0

    def figures(self) -> dict[str, float]:
        n = self.received
        return {
            "received": n,
            "spam": self.spam / n if n else 0.0,
            "large": self.large / n if n else 0.0,
            "volume": self.volume,
        }


@dataclass
class Dashboard:
    weeks: list[date]  # the Mondays shown, oldest first
    users: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # user -> figures per week
    median: list[dict[str, float]] = field(default_factory=list)  # the site's, per week

    def to_json(self) -> dict:
        return {
            "weeks": [w.isoformat() for w in self.weeks],
            "users": self.users,
            "median": self.median,
        }


def monday(when: datetime) -> date:
    d = when.astimezone(UTC).date()
    return d - timedelta(days=d.weekday())


def _leaf(name: str) -> str:
    return name.replace(".", "/").rstrip("/").rsplit("/", 1)[-1].lower()


class SpamCache:
    """blob -> 1/0 (marked spam in its headers), in a SQLite file of the home (0600)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS spam (blob TEXT PRIMARY KEY, spam INTEGER NOT NULL)")

    def get(self, blobs: list[str]) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for i in range(0, len(blobs), 500):
            chunk = blobs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for blob, spam in self.db.execute(f"SELECT blob, spam FROM spam WHERE blob IN ({marks})", chunk):
                out[blob] = bool(spam)
        return out

    def put(self, verdicts: dict[str, bool]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO spam(blob, spam) VALUES (?,?)",
                [(b, int(s)) for b, s in verdicts.items()],
            )

    def close(self) -> None:
        self.db.close()


def _spam_in_headers(data: bytes) -> bool:
    from vault.mailview import is_spam, parse

    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return is_spam(parse(data[: end + 4] if end >= 0 else data))


def dashboard(
    vault, cache: SpamCache, *, large_bytes: int, weeks: int = 12, until: datetime | None = None
) -> Dashboard:
    """Every user's figures for the ``weeks`` weeks up to ``until`` (now), and the site median."""
    last = monday(until or now())
    mondays = [last - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    first = datetime.combine(mondays[0], datetime.min.time(), UTC)
    names: dict[str, str | None] = {}
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[str, date, dict, str]] = []  # user, week, item row, folder leaf
    for item in vault.catalog.arrivals(format_time(first)):
        mailbox = item["mailbox_id"]
        if mailbox not in names:
            names[mailbox] = vault.catalog.folder_name(mailbox)
        name = names[mailbox]
        user = custodian_of(name)
        if user is None or name is None or _leaf(name) in NOT_RECEIVED:
            continue
        when = parse_time(item["internal_date"] or item["appended_at"])
        if when < first or (user, item["blob"]) in seen:
            continue
        seen.add((user, item["blob"]))
        rows.append((user, monday(when), item, _leaf(name)))
    verdicts = cache.get(sorted({r[2]["blob"] for r in rows}))
    fresh: dict[str, bool] = {}
    for _, _, item, _ in rows:
        blob = item["blob"]
        if blob not in verdicts and blob not in fresh and not item["purged_at"]:
            fresh[blob] = _spam_in_headers(vault.store.get(blob))
    if fresh:
        cache.put(fresh)
        verdicts.update(fresh)
    per_user: dict[str, dict[date, Week]] = {}
    shown = set(mondays)
    for user, week, item, leaf in rows:
        if week not in shown:  # a date in the future
            continue
        w = per_user.setdefault(user, {}).setdefault(week, Week(week))
        w.received += 1
        w.volume += item["size"]
        w.large += item["size"] > large_bytes
        w.spam += leaf in JUNK or verdicts.get(item["blob"], False)
    board = Dashboard(mondays)
    for user in sorted(per_user):
        board.users[user] = [per_user[user].get(m, Week(m)).figures() for m in mondays]
    for i, m in enumerate(mondays):
        active = [board.users[u][i] for u in board.users if m in per_user[u]]
        board.median.append(
            {f: float(statistics.median(a[f] for a in active)) if active else 0.0 for f in FIGURES}
        )
    return board
