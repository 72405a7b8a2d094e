"""The groupware engines through their Python API: Kolab 3 objects parsed from the test
messages (tests/data/kolab), diffs of parsed properties, folder names and who may read them,
free/busy expansion checked against a hand-made expansion."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.data import data_file
from vault.groupware.changelog import revision_number
from vault.groupware.diff import diff
from vault.groupware.freebusy import busy_periods
from vault.groupware.kolab import KolabError, header_identity, parse_message, parse_xml
from vault.groupware.mailboxes import Namespace

EVENT_UID = "9b4e1f2a-6c1d-4e7a-9f3b-2d5c8a7e6f01"
BERLIN = ZoneInfo("Europe/Berlin")


def obj(name: str):
    return parse_message(data_file(f"kolab/{name}.eml").read_bytes())


def test_each_type_parses_with_its_uid_from_the_subject():
    for name, kind in (
        ("event-r1", "event"),
        ("task-r1", "task"),
        ("contact-r1", "contact"),
        ("note-r1", "note"),
    ):
        raw = data_file(f"kolab/{name}.eml").read_bytes()
        found = header_identity(raw)
        assert found is not None and found[0] == kind
        parsed = parse_message(raw)
        assert parsed.type == kind and parsed.uid == found[1]
    event = obj("event-r1").main
    assert event.name == "vevent"
    assert event.text("summary") == "Team standup" and event.text("location") == "Room 1"
    start = event.first("dtstart")
    assert (
        start is not None
        and start.value == "2026-03-02T10:00:00"
        and start.params == {"tzid": "/kolab.org/Europe/Berlin"}
    )
    assert event.properties()["rrule"] == {"freq": "WEEKLY", "count": "6", "byday": "MO"}
    assert obj("contact-r1").main.properties()["n"]["surname"] == "Smith"
    assert obj("note-r2").main.text("summary") == "Groceries for Sunday"


def test_not_kolab_and_hostile_xml_are_refused():
    plain = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n"
    assert header_identity(plain) is None
    with pytest.raises(KolabError):
        parse_message(plain)
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><note xmlns="http://kolab.org"><uid>&a;</uid></note>'
    with pytest.raises(KolabError, match="DOCTYPE"):
        parse_xml(bomb, "note")


def test_diff_names_the_changed_properties_not_the_text():
    changes = diff(obj("event-r1"), obj("event-r2"), 1)["changes"]
    assert {c["property"] for c in changes} == {"location", "attendee", "exdate"}
    attendees = [c for c in changes if c["property"] == "attendee"]
    assert [c["index"] for c in attendees] == [0, 1]  # Bob accepted, Carol added
    assert attendees[0]["old"]["partstat"] == "NEEDS-ACTION" and attendees[0]["new"]["partstat"] == "ACCEPTED"
    assert attendees[1]["old"] is None and attendees[1]["new"]["value"] == "mailto:carol@example.org"
    assert diff(obj("event-r2"), obj("event-r3"), 2)["changes"] == [
        {"property": "summary", "old": "Team standup", "new": "Team sync"}
    ]
    same = diff(obj("event-r1"), obj("event-r1"), 1)
    assert same["changes"] == [] and same["uid"] == EVENT_UID
    exception = diff(obj("event-r3"), obj("event-r3"), 3, instance="2026-03-23T10:00:00")
    assert exception["changes"] == []
    tasks = {c["property"] for c in diff(obj("task-r1"), obj("task-r2"), 1)["changes"]}
    assert tasks == {"due", "status", "percent-complete"}  # dtstamp and sequence are bookkeeping
    contact = {
        (c["property"], c.get("index")) for c in diff(obj("contact-r1"), obj("contact-r2"), 1)["changes"]
    }
    assert contact == {("email", 0), ("tel", 0)}
    note = {c["property"] for c in diff(obj("note-r1"), obj("note-r2"), 1)["changes"]}
    assert note == {"summary", "description"}


def test_revision_numbers_are_deciseconds_since_2014():
    assert revision_number("2014-01-01T00:00:00.000000Z") == 0
    assert revision_number("2014-01-01T00:00:01.250000Z") == 12
    assert revision_number("2026-03-02T09:00:00.000000Z") == int(
        (datetime(2026, 3, 2, 9, tzinfo=UTC) - datetime(2014, 1, 1, tzinfo=UTC)).total_seconds() * 10
    )


def by_hand_weekly(first_local: datetime, weeks: int, skip: set[int], moved: dict[int, tuple[int, int]]):
    """The weekly series expanded without any calendar library: local wall time + 7 days,
    each occurrence converted to UTC with its own offset (DST starts 2026-03-29 in Berlin)."""
    out = []
    for n in range(weeks):
        if n in skip:
            continue
        local = first_local + timedelta(days=7 * n)
        start_hour, end_hour = moved.get(n, (local.hour, local.hour + 1))
        s = local.replace(hour=start_hour, tzinfo=BERLIN).astimezone(UTC)
        e = local.replace(hour=end_hour, tzinfo=BERLIN).astimezone(UTC)
        out.append((s, e, "BUSY"))
    return out


def test_free_busy_expands_recurrences_and_skips_free_time():
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    found = busy_periods(
        [obj("event-r3"), obj("event-tentative"), obj("event-transparent"), obj("event-cancelled")],
        start,
        end,
    )
    expected = by_hand_weekly(datetime(2026, 3, 2, 10), 6, skip={2}, moved={3: (14, 15)})
    expected.append(
        (datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 9, 30, tzinfo=UTC), "BUSY-TENTATIVE")
    )
    assert found == sorted(expected)
    # across the DST change the wall time stays, the UTC time moves by an hour
    assert (found[0][0].hour, found[-1][0].hour) == (9, 8)
    # a window cuts occurrences to its bounds
    cut = busy_periods(
        [obj("event-r1")], datetime(2026, 3, 2, 9, 30, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    )
    assert cut == [(datetime(2026, 3, 2, 9, 30, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC), "BUSY")]


@pytest.mark.parametrize(
    "login, mailbox, names",
    [
        ("jane@example.org", "Calendar", ["user/jane/Calendar"]),
        ("jane@example.org", "INBOX", ["user/jane/INBOX", "user/jane"]),
        ("jane@example.org", "Other Users/bob/Calendar", ["user/bob/Calendar"]),
        ("jane@example.org", "Shared Folders/shared/Calendar", ["shared/Calendar"]),
        ("jane@other.net", "Calendar", ["user/jane/Calendar@other.net"]),
        ("jane", "Work/Projects", ["user/jane/Work/Projects"]),
    ],
)
def test_user_relative_names_map_to_the_archives(login, mailbox, names):
    assert Namespace("example.org").candidates(login, mailbox) == names


def test_who_may_read_a_folder():
    ns = Namespace("example.org")
    assert ns.may_read("jane@example.org", "user/jane/Calendar", None)
    assert ns.may_read("JANE", "user/jane/Calendar", None)
    assert not ns.may_read("jane@example.org", "user/bob/Calendar", None)  # no archived ACL: owner only
    assert not ns.may_read("jane@other.net", "user/jane/Calendar", None)  # another domain's jane
    assert ns.may_read("jane@example.org", "user/bob/Calendar", {"bob": "lrswipkxtecda", "jane": "lrs"})
    assert not ns.may_read("jane@example.org", "user/bob/Calendar", {"bob": "lrswipkxtecda", "jane": "l"})
    assert ns.may_read("carol@example.org", "shared/Calendar", {"anyone": "lrs"})


def test_test_objects_are_realistic_kolab_messages():
    raw = data_file("kolab/event-r2.eml").read_text()
    assert re.search(r"^X-Kolab-Type: application/x-vnd.kolab.event$", raw, re.M)
    assert re.search(r"^X-Kolab-Mime-Version: 3.0$", raw, re.M)
    assert "filename=kolab.xml" in raw and "Content-Transfer-Encoding: quoted-printable" in raw
