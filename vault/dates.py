"""The one meaning of a date filter, for search, holds, erasure and retention alike.

The rule (README, e-discovery; docs/architecture.md 1.9):

- A date filter is about the **received date**: the message's internal date as archived (when
  the server took delivery of that copy; its append time when it has none). ``before:``,
  ``after:`` and ``on:`` in a query, a hold's ``--from``/``--to``, an erasure's query and the
  age retention rules count all use it. Only ``sent:``, ``sentbefore:`` and ``sentafter:``
  (query terms) are about the ``Date:`` header, which the sender's clock wrote.
- A bare day (``2026-01-31``) or a time without a zone (``2026-01-31T09:00``) is in the
  site's time zone (``[site] timezone`` in config.toml, an IANA name; default UTC); a zone
  given with it (``Z``, ``+02:00``) wins.
- A day is the half-open span from its midnight to the next: ``after:D`` and ``--from D``
  start at D's midnight (inclusive); ``before:D`` ends there (exclusive); ``on:D`` and
  ``--to D`` include the whole of D. So ``--from A --to B`` covers exactly
  ``after:A before:<the day after B>``, and a hold placed with a query and dates covers
  exactly what the search ``custodian:<them> (<query>) after:A before:<B + 1 day>`` finds.
- Times are shown with their zone (:func:`show`).

:class:`Span` is a set of instants ``[start, end)``; every filter above is one, made here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RECEIVED = "received"  # the internal date of the archived copy
SENT = "sent"  # the Date: header

_DAY = re.compile(r"^(\d{4})[-/](\d{2})[-/](\d{2})(?:([+-])(\d{2}):?(\d{2})|([Zz]))?$", re.A)


class DateError(ValueError):
    """A date that is not one (the message says what is wrong and gives an example)."""


def site_zone(config=None) -> tzinfo:
    """``[site] timezone`` of ``config`` (None: UTC). DateError for a name zoneinfo lacks."""
    name = ""
    if config is not None:
        name = str(config["site"].get("timezone") or "").strip()
    return zone_named(name)


def zone_named(name: str) -> tzinfo:
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DateError(
            f"[site] timezone {name!r} is not a time zone (an IANA name: Europe/Berlin, UTC)"
        ) from None


def zone_name(zone: tzinfo) -> str:
    return "UTC" if zone is UTC else str(getattr(zone, "key", None) or zone.tzname(None) or zone)


@dataclass(frozen=True)
class Moment:
    """What a date text stands for: a whole day (``day`` True: ``start`` is its midnight,
    ``next`` the following midnight) or one instant (``start`` == ``next``)."""

    start: datetime
    next: datetime
    day: bool


def read(text: str, zone: tzinfo = UTC) -> Moment:
    """A day (``YYYY-MM-DD``, optionally with ``Z`` or ``+HH:MM``) or an ISO time; either
    without a zone is in ``zone``. Times come back in UTC. DateError when it is neither."""
    value = text.strip()
    m = _DAY.match(value)
    if m:
        where: tzinfo = zone
        if m.group(4):
            offset = timedelta(hours=int(m.group(5)), minutes=int(m.group(6)))
            if offset >= timedelta(hours=24):
                raise DateError(f"the zone in {value!r} is out of range (-23:59 to +23:59)")
            where = timezone(-offset if m.group(4) == "-" else offset)
        elif m.group(7):
            where = UTC
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError as e:
            raise DateError(f"{value}: {e}") from None
        start = _midnight(day, where, value)
        following = _midnight(day + timedelta(days=1), where, value) if day < date.max else _MAX
        return Moment(start, following, True)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DateError(f"{value!r} is not a date (YYYY-MM-DD, or an ISO time)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    at = _utc(when, value)
    return Moment(at, at, False)


_MAX = datetime.max.replace(tzinfo=UTC)


def _midnight(day: date, zone: tzinfo, value: str) -> datetime:
    return _utc(datetime.combine(day, time(0), tzinfo=zone), value)


def _utc(when: datetime, value: str) -> datetime:
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):  # 0001-01-01 east of UTC is in year 0
        raise DateError(f"{value!r} is out of range") from None


@dataclass(frozen=True)
class Span:
    """The instants ``start <= t < end`` (None: open on that side)."""

    start: datetime | None = None
    end: datetime | None = None

    def __contains__(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)


def after(text: str, zone: tzinfo = UTC) -> datetime:
    """``after:`` / ``--from``: from the day's midnight, or from the instant (inclusive)."""
    return read(text, zone).start


def before(text: str, zone: tzinfo = UTC) -> datetime:
    """``before:``: up to the day's midnight, or the instant (exclusive)."""
    return read(text, zone).start


def through(text: str, zone: tzinfo = UTC) -> datetime:
    """``--to`` / ``on:``: the first instant after the day (or after the exact instant)."""
    moment = read(text, zone)
    return moment.next if moment.day else moment.start + timedelta(microseconds=1)


def on(text: str, zone: tzinfo = UTC) -> Span:
    return Span(after(text, zone), through(text, zone))


_STORED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z", re.A)


def received_key(row: dict) -> str:
    """An item's received date as a string that sorts as the time (``format_time``'s form,
    which the catalog stores): comparing these is the cheap way to filter many copies."""
    from vault.model import format_time

    text = row.get("internal_date") or row["appended_at"]
    return text if _STORED.match(text) else format_time(received(row))


def received(row: dict) -> datetime:
    """An archived item's received date (catalog row): its internal date, else its append time."""
    from vault.model import parse_time

    return parse_time(row.get("internal_date") or row["appended_at"])


def show(when: datetime, zone: tzinfo = UTC) -> str:
    """A time for people, in ``zone`` and saying so: ``2026-01-31 09:00:00 Europe/Berlin (+01:00)``;
    in UTC ``2026-01-31 08:00:00Z``."""
    if when.tzinfo is None:
        return when.isoformat()
    if zone is UTC:
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    local = when.astimezone(zone)
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {zone_name(zone)} ({local.strftime('%z')[:3]}:{local.strftime('%z')[3:]})"
