"""Free/busy (RFC 5545 VFREEBUSY) of a user from the archived calendars, as they were at a time.

The user's calendar folders are their own folders (mailboxes.Namespace.owner_of) that carry
the name at that time and hold Kolab events; a folder whose archived metadata names another
Kolab folder type (``/shared/vendor/kolab/folder-type``: mail, task, contact...) is skipped
without being read. Each event present in one of them at that time is turned into an
iCalendar VEVENT (icalendar), its recurrences and exceptions expanded over the asked window
(recurring-ical-events); an occurrence that is ``TRANSPARENT`` or ``CANCELLED`` is free, one
that is ``TENTATIVE`` is ``BUSY-TENTATIVE``, every other one ``BUSY``. Overlapping periods of one
type are merged. Times are UTC; a ``/kolab.org/Europe/Berlin`` TZID is the zone
``Europe/Berlin``; a floating time or an all-day date is read as UTC (the archive does not know
the user's zone).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from vault.groupware.kolab import Component, KolabError, KolabObject, Prop, parse_message
from vault.groupware.mailboxes import Namespace
from vault.model import format_time

FOLDER_TYPE_KEYS = ("/shared/vendor/kolab/folder-type", "/private/vendor/kolab/folder-type")
BUSY, TENTATIVE = "BUSY", "BUSY-TENTATIVE"


def _zone(tzid: str | None):
    if not tzid:
        return UTC  # floating: read as UTC
    name = tzid.strip()
    if name.startswith("/"):  # /kolab.org/Europe/Berlin, /mozilla.org/...
        name = name.split("/", 2)[2] if name.count("/") >= 2 else name.lstrip("/")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _when(text: str, vtype: str, tzid: str | None) -> date | datetime:
    text = text.strip()
    if vtype == "date" or (len(text) in (8, 10) and "T" not in text):
        return date.fromisoformat(text if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:]}")
    if "-" not in text:  # basic format 20260302T100000(Z)
        text = f"{text[:4]}-{text[4:6]}-{text[6:11]}:{text[11:13]}:{text[13:]}"
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(tzid))


def _prop_times(prop: Prop) -> list[date | datetime]:
    tzid = prop.params.get("tzid")
    values = prop.value if isinstance(prop.value, list) else [prop.value]
    return [
        _when(v, prop.type, tzid if isinstance(tzid, str) else None)
        for v in values
        if isinstance(v, str) and v
    ]


def _ical_time(when: date | datetime) -> str:
    if isinstance(when, datetime):
        return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return when.strftime("%Y%m%d")


def _rrule(prop: Prop) -> icalendar.vRecur:
    parts = []
    for key, value in (prop.value or {}).items():
        values = value if isinstance(value, list) else [value]
        if key == "until":
            values = [
                _ical_time(_when(str(v), "date-time" if "T" in str(v) else "date", None)) for v in values
            ]
        parts.append(f"{key.upper()}={','.join(str(v) for v in values)}")
    return icalendar.vRecur.from_ical(";".join(parts))


def to_vevent(comp: Component, uid: str) -> icalendar.Event | None:
    """An iCalendar VEVENT of an xCal vevent (None without a start)."""
    start_prop = comp.first("dtstart")
    if start_prop is None:
        return None
    start = _prop_times(start_prop)[0]
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("dtstart", start)
    end_prop, duration = comp.first("dtend"), comp.text("duration")
    if end_prop is not None:
        ev.add("dtend", _prop_times(end_prop)[0])
    elif duration:
        ev.add("duration", icalendar.vDuration.from_ical(duration))
    elif not isinstance(start, datetime):
        ev.add("dtend", start + timedelta(days=1))
    rrule = comp.first("rrule")
    if rrule is not None:
        ev.add("rrule", _rrule(rrule))
    for name in ("exdate", "rdate"):
        for prop in comp.props.get(name, []):
            times = _prop_times(prop)
            if times:
                ev.add(name, times)
    rid = comp.first("recurrence-id")
    if rid is not None:
        ev.add("recurrence-id", _prop_times(rid)[0])
    for name in ("transp", "status", "summary"):
        text = comp.text(name)
        if text:
            ev.add(name, text)
    return ev


def busy_periods(
    objects: list[KolabObject], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """(start, end, FBTYPE) of every busy occurrence within [start, end), merged per type."""
    cal = icalendar.Calendar()
    for obj in objects:
        for comp in [obj.main, *obj.exceptions]:
            ev = to_vevent(comp, obj.uid)
            if ev is not None:
                cal.add_component(ev)
    found: dict[str, list[tuple[datetime, datetime]]] = {BUSY: [], TENTATIVE: []}
    for occ in recurring_ical_events.of(cal).between(start, end):
        if str(occ.get("transp", "")).upper() == "TRANSPARENT":
            continue
        status = str(occ.get("status", "")).upper()
        if status == "CANCELLED":
            continue
        s, e = _utc(occ.decoded("dtstart")), _utc(occ.decoded("dtend")) if "dtend" in occ else None
        if e is None:
            e = s + (occ.decoded("duration") if "duration" in occ else timedelta(0))
        s, e = max(s, start), min(e, end)
        if e > s:
            found[TENTATIVE if status == "TENTATIVE" else BUSY].append((s, e))
    out = []
    for kind, periods in found.items():
        for s, e in _merged(periods):
            out.append((s, e, kind))
    return sorted(out)


def _utc(when: date | datetime) -> datetime:
    if isinstance(when, datetime):
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime(when.year, when.month, when.day, tzinfo=UTC)


def _merged(periods: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(periods):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def render(address: str, periods, start: datetime, end: datetime, stamp: datetime) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//vault//free-busy//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    fb = icalendar.FreeBusy()
    fb.add("organizer", f"mailto:{address}")
    fb.add("dtstamp", stamp.astimezone(UTC))
    fb.add("dtstart", start)
    fb.add("dtend", end)
    for s, e, kind in periods:
        fb.add("freebusy", [(s, e)], parameters={"FBTYPE": kind})
    cal.add_component(fb)
    return cal.to_ical()


def calendar_folders(catalog, namespace: Namespace, login: str, at: str) -> list[tuple[str, str]]:
    """(mailboxID, name) of ``login``'s folders as they were named at ``at``, less those whose
    archived metadata gives another Kolab folder type."""
    who = namespace.canonical(login)
    out = []
    for mailbox_id, name in sorted(set(catalog.folder_names())):
        if namespace.owner_of(name) != who or catalog.folder_name(mailbox_id, at) != name:
            continue
        folder = catalog.folder(mailbox_id) or {}
        if folder.get("created_at") and folder["created_at"] > at:
            continue
        meta = folder.get("metadata")
        if isinstance(meta, str):
            meta = json.loads(meta) if meta else None
        kind = next((str(meta[k]) for k in FOLDER_TYPE_KEYS if isinstance(meta, dict) and meta.get(k)), None)
        if kind is not None and not kind.startswith("event"):
            continue
        out.append((mailbox_id, name))
    return out


def events_at(
    vault, objects, namespace: Namespace, login: str, at: datetime
) -> tuple[list[KolabObject], list[str]]:
    """The events of ``login``'s calendars as they were at ``at``, and the folders read."""
    when = format_time(at)
    found, folders = [], []
    for mailbox_id, name in calendar_folders(vault.catalog, namespace, login, when):
        rows = [r for r in vault.catalog.items_at(mailbox_id, when) if not r.get("purged_at")]
        ids = objects.identities(rows, vault.store.get)
        events = [r for r in rows if (ids.get(r["blob"]) or ("",))[0] == "event"]
        if events:
            folders.append(name)
        for r in events:
            try:
                found.append(parse_message(vault.store.get(r["blob"])))
            except KolabError:
                continue  # a malformed object blocks no one's free/busy
    return found, folders
