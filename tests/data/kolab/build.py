"""Writes the Kolab 3 test objects of this directory (run from the repository root:
``python tests/data/kolab/build.py``). Each object is a message as Roundcube's libkolab saves it:
multipart/mixed, X-Kolab-Type, Subject = the UID, a text/plain notice and the kolab.xml part
(quoted-printable, as libkolab writes it). The files are committed; this only documents how."""

from __future__ import annotations

import quopri
from pathlib import Path

HERE = Path(__file__).resolve().parent
XCAL = "urn:ietf:params:xml:ns:icalendar-2.0"
XCARD = "urn:ietf:params:xml:ns:vcard-4.0"
NOTICE = (
    "This is a Kolab Groupware object. To view this object you will need an email client that\r\n"
    "understands the Kolab Groupware format. For a list of such email clients please visit\r\n"
    "http://www.kolab.org/\r\n"
)
MIME = {"event": "application/calendar+xml", "task": "application/calendar+xml",
        "contact": "application/vcard+xml", "note": "application/vnd.kolab+xml"}  # fmt: skip

EVENT_UID = "9b4e1f2a-6c1d-4e7a-9f3b-2d5c8a7e6f01"
TASK_UID = "3f8d2c1b-7a6e-4b5d-8c9f-0e1a2b3c4d5e"
CONTACT_UID = "urn:uuid:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
NOTE_UID = "1e2d3c4b-5a69-4788-9a6b-5c4d3e2f1a0b"
SINGLE_UIDS = {
    "tentative": "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9",
    "transparent": "1b2c3d4e-5f60-4172-93a4-b5c6d7e8f9a0",
    "cancelled": "2c3d4e5f-6071-4283-a4b5-c6d7e8f9a0b1",
}


def message(kind: str, uid: str, xml: str, date: str) -> bytes:
    boundary = "=_" + uid.replace("-", "")[-24:]
    body = quopri.encodestring(xml.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    head = (
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed;\r\n boundary="{boundary}"\r\n'
        "From: Jane Doe <jane@example.org>\r\n"
        "To: jane@example.org\r\n"
        f"Date: {date}\r\n"
        f"X-Kolab-Type: application/x-vnd.kolab.{kind}\r\n"
        "X-Kolab-Mime-Version: 3.0\r\n"
        f"Subject: {uid}\r\n"
        "User-Agent: Kolab 16/Roundcube 1.4.15\r\n"
        "\r\n"
    )
    parts = (
        f"--{boundary}\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\n\r\n"
        f"{NOTICE}\r\n"
        f"--{boundary}\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        f"Content-Type: {MIME[kind]}; charset=UTF-8;\r\n name=kolab.xml\r\n"
        f"Content-Disposition: attachment;\r\n filename=kolab.xml;\r\n size={len(xml.encode())}\r\n\r\n"
        f"{body}\r\n"
        f"--{boundary}--\r\n"
    )
    return (head + parts).encode("ascii")


def text(name: str, value: str) -> str:
    return f"<{name}><text>{value}</text></{name}>"


def dt(name: str, value: str, tz: str | None = "/kolab.org/Europe/Berlin") -> str:
    params = f"<parameters><tzid><text>{tz}</text></tzid></parameters>" if tz else ""
    return f"<{name}>{params}<date-time>{value}</date-time></{name}>"


def attendee(cn: str, mail: str, partstat: str = "NEEDS-ACTION") -> str:
    return (
        "<attendee><parameters>"
        f"<cn><text>{cn}</text></cn><partstat><text>{partstat}</text></partstat>"
        "<role><text>REQ-PARTICIPANT</text></role><rsvp><boolean>true</boolean></rsvp>"
        f"</parameters><cal-address>mailto:{mail}</cal-address></attendee>"
    )


def xcal(components: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
        f'<icalendar xmlns="{XCAL}">\n <vcalendar>\n  <properties>\n'
        "   <prodid><text>Roundcube-libkolab-1.1 Libkolabxml-1.2</text></prodid>\n"
        "   <version><text>2.0</text></version>\n"
        "   <x-kolab-version><text>3.1.0</text></x-kolab-version>\n"
        "  </properties>\n  <components>\n"
        + "".join(f"   {c}\n" for c in components)
        + "  </components>\n </vcalendar>\n</icalendar>\n"
    )


def vevent(uid: str, seq: int, stamp: str, props: list[str]) -> str:
    head = [
        text("uid", uid),
        "<created><date-time>2026-02-20T09:00:00Z</date-time></created>",
        f"<dtstamp><date-time>{stamp}</date-time></dtstamp>",
        f"<sequence><integer>{seq}</integer></sequence>",
        text("class", "PUBLIC"),
    ]
    return "<vevent><properties>" + "".join(head + props) + "</properties></vevent>"


ORGANIZER = (
    "<organizer><parameters><cn><text>Jane Doe</text></cn></parameters>"
    "<cal-address>mailto:jane@example.org</cal-address></organizer>"
)
WEEKLY = "<rrule><recur><freq>WEEKLY</freq><count>6</count><byday>MO</byday></recur></rrule>"


def event_revisions() -> list[str]:
    base = [dt("dtstart", "2026-03-02T10:00:00"), dt("dtend", "2026-03-02T11:00:00"), WEEKLY]
    r1 = vevent(EVENT_UID, 0, "2026-02-20T09:00:00Z", base + [
        text("summary", "Team standup"), text("location", "Room 1"), ORGANIZER,
        attendee("Bob Smith", "bob@example.org"),
    ])  # fmt: skip
    r2 = vevent(EVENT_UID, 1, "2026-02-21T09:00:00Z", base + [
        dt("exdate", "2026-03-16T10:00:00"),
        text("summary", "Team standup"), text("location", "Room 2"), ORGANIZER,
        attendee("Bob Smith", "bob@example.org", "ACCEPTED"), attendee("Carol White", "carol@example.org"),
    ])  # fmt: skip
    r3_main = vevent(EVENT_UID, 2, "2026-02-22T09:00:00Z", base + [
        dt("exdate", "2026-03-16T10:00:00"),
        text("summary", "Team sync"), text("location", "Room 2"), ORGANIZER,
        attendee("Bob Smith", "bob@example.org", "ACCEPTED"), attendee("Carol White", "carol@example.org"),
    ])  # fmt: skip
    # one exception: the 2026-03-23 occurrence moved to the afternoon
    r3_exception = vevent(EVENT_UID, 2, "2026-02-22T09:00:00Z", [
        dt("recurrence-id", "2026-03-23T10:00:00"),
        dt("dtstart", "2026-03-23T14:00:00"), dt("dtend", "2026-03-23T15:00:00"),
        text("summary", "Team sync (afternoon)"), text("location", "Room 2"), ORGANIZER,
    ])  # fmt: skip
    return [xcal([r1]), xcal([r2]), xcal([r3_main, r3_exception])]


def single(kind: str) -> str:
    uid = SINGLE_UIDS[kind]
    if kind == "tentative":
        props = [dt("dtstart", "2026-03-04T09:00:00Z", None), dt("dtend", "2026-03-04T09:30:00Z", None),
                 text("summary", "Maybe: dentist"), text("status", "TENTATIVE")]  # fmt: skip
    elif kind == "transparent":
        props = ["<dtstart><date>2026-03-05</date></dtstart>", "<dtend><date>2026-03-06</date></dtend>",
                 text("summary", "Bob's birthday"), text("transp", "TRANSPARENT")]  # fmt: skip
    else:
        props = [dt("dtstart", "2026-03-06T12:00:00Z", None), dt("dtend", "2026-03-06T13:00:00Z", None),
                 text("summary", "Lunch (called off)"), text("status", "CANCELLED")]  # fmt: skip
    return xcal([vevent(uid, 0, "2026-02-20T09:00:00Z", props)])


def task_revisions() -> list[str]:
    def vtodo(seq: int, status: str, percent: int, due: str) -> str:
        props = [
            text("uid", TASK_UID), f"<dtstamp><date-time>2026-02-2{seq}T08:00:00Z</date-time></dtstamp>",
            f"<sequence><integer>{seq}</integer></sequence>", text("summary", "Send the quarterly report"),
            dt("due", due), text("status", status), f"<percent-complete><integer>{percent}</integer></percent-complete>",
            "<priority><integer>1</integer></priority>",
        ]  # fmt: skip
        return "<vtodo><properties>" + "".join(props) + "</properties></vtodo>"

    return [
        xcal([vtodo(0, "NEEDS-ACTION", 0, "2026-03-31T17:00:00")]),
        xcal([vtodo(1, "COMPLETED", 100, "2026-03-27T17:00:00")]),
    ]


def contact_revisions() -> list[str]:
    def vcard(rev: str, emails: list[str], tels: list[str]) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
            f'<vcards xmlns="{XCARD}">\n <vcard>\n'
            f"  <uid><uri>{CONTACT_UID}</uri></uid>\n"
            "  <x-kolab-version><text>3.1.0</text></x-kolab-version>\n"
            "  <prodid><text>Roundcube-libkolab-1.1 Libkolabxml-1.2</text></prodid>\n"
            f"  <rev><timestamp>{rev}</timestamp></rev>\n"
            "  <kind><text>individual</text></kind>\n"
            "  <fn><text>Bob Smith</text></fn>\n"
            "  <n><surname>Smith</surname><given>Bob</given><additional/><prefix/><suffix/></n>\n"
            "  <org><text>Example Corp</text></org>\n"
            + "".join(f"  <email><parameters><type><text>work</text></type></parameters><text>{e}</text></email>\n" for e in emails)
            + "".join(f"  <tel><parameters><type><text>cell</text></type></parameters><text>{t}</text></tel>\n" for t in tels)
            + " </vcard>\n</vcards>\n"
        )  # fmt: skip

    return [
        vcard("20260220T090000Z", ["bob@example.org"], []),
        vcard("20260225T090000Z", ["bob.smith@example.org"], ["+49 30 1234567"]),
    ]


def note_revisions() -> list[str]:
    def note(modified: str, summary: str, description: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
            '<note xmlns="http://kolab.org" version="3.0">\n'
            f"  <uid>{NOTE_UID}</uid>\n"
            "  <prodid>Roundcube-libkolab-1.1 Libkolabxml-1.2</prodid>\n"
            "  <creation-date>2026-02-20T09:00:00Z</creation-date>\n"
            f"  <last-modification-date>{modified}</last-modification-date>\n"
            "  <classification>PUBLIC</classification>\n"
            f"  <summary>{summary}</summary>\n"
            f"  <description>{description}</description>\n"
            "  <color/>\n"
            "</note>\n"
        )

    return [
        note("2026-02-20T09:00:00Z", "Groceries", "milk, eggs"),
        note("2026-02-24T18:30:00Z", "Groceries for Sunday", "milk, eggs, coffee"),
    ]


def main() -> None:
    sets = {
        ("event", EVENT_UID): event_revisions(),
        ("task", TASK_UID): task_revisions(),
        ("contact", CONTACT_UID): contact_revisions(),
        ("note", NOTE_UID): note_revisions(),
    }
    for (kind, uid), revisions in sets.items():
        for n, xml in enumerate(revisions, 1):
            date = f"Mon, {20 + n:02d} Feb 2026 09:00:00 +0100"
            (HERE / f"{kind}-r{n}.eml").write_bytes(message(kind, uid, xml, date))
    for kind, uid in SINGLE_UIDS.items():
        (HERE / f"event-{kind}.eml").write_bytes(
            message("event", uid, single(kind), "Fri, 20 Feb 2026 09:00:00 +0100")
        )


if __name__ == "__main__":
    main()
