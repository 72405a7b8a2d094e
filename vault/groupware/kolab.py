"""One parser of Kolab 3 groupware objects (docs/architecture.md, "Groupware and the web service").

A Kolab 3 object is a MIME message in an IMAP folder:
- header ``X-Kolab-Type: application/x-vnd.kolab.<type>`` (event, task, note, contact, ...);
- ``Subject``: the object's UID;
- a part named ``kolab.xml`` holding the object: xCal (RFC 6321, ``application/calendar+xml``)
  for events and tasks, xCard (RFC 6351, ``application/vcard+xml``) for contacts, Kolab's own
  XML (``application/vnd.kolab+xml``) for notes.
An update of the object is a new message appended to the folder and the old one deleted.

Properties are read generically: each property element becomes a :class:`Prop` (value, value
type, parameters), so a diff compares values, not text, and a property this parser was never
told about is still compared.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

TYPE_HEADER = "X-Kolab-Type"
TYPE_PREFIX = "application/x-vnd.kolab."
# the object types of Bonnie's client API (method prefixes); Kolab knows more (journal, file,
# configuration, distribution-list): those parse too, but the API does not name them
API_TYPES = ("event", "task", "note", "contact")
XML_TYPES = ("application/calendar+xml", "application/vcard+xml", "application/vnd.kolab+xml")
_CALENDAR_COMPONENTS = ("vevent", "vtodo", "vjournal")
# properties that may occur more than once: always lists, so index i means the same thing in
# every revision
MULTI = frozenset(
    {
        "attendee", "attach", "categories", "comment", "contact", "exdate", "rdate", "related-to",
        "resources", "email", "tel", "adr", "url", "impp", "key", "lang", "member", "related",
        "x-custom", "valarm", "nickname",
    }
)  # fmt: skip
HEADER_LIMIT = 64 * 1024  # bytes of a message read to find its headers


class KolabError(ValueError):
    """Not a Kolab 3 object, or a malformed one."""


@dataclass(frozen=True)
class Prop:
    """One property: its value (text, a list of texts, or a table for structured values such as
    ``rrule`` or ``n``), the value's type (``text``, ``date-time``, ``date``, ``recur``...) and
    its parameters (``tzid``, ``cn``, ``partstat``...)."""

    name: str
    value: Any
    type: str = "text"
    params: dict[str, Any] = field(default_factory=dict)

    def plain(self) -> Any:
        """The value as the API shows it: bare, or with its parameters beside it."""
        return self.value if not self.params else {"value": self.value, **self.params}


@dataclass
class Component:
    """One component: a vevent, vtodo, vjournal, vcard or note, and its properties in order."""

    name: str
    props: dict[str, list[Prop]] = field(default_factory=dict)

    def add(self, prop: Prop) -> None:
        self.props.setdefault(prop.name, []).append(prop)

    def first(self, name: str) -> Prop | None:
        found = self.props.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        prop = self.first(name)
        return None if prop is None or not isinstance(prop.value, str) else prop.value

    def properties(self) -> dict[str, Any]:
        """name -> plain value, or a list of them for a property that may repeat."""
        out: dict[str, Any] = {}
        for name, props in self.props.items():
            if name in MULTI or len(props) > 1:
                out[name] = [p.plain() for p in props]
            else:
                out[name] = props[0].plain()
        return out


@dataclass
class KolabObject:
    type: str  # event, task, note, contact, ...
    uid: str
    xml: str  # the kolab.xml part, as stored
    main: Component  # the object (for a recurring event: the series)
    exceptions: list[Component] = field(default_factory=list)  # instances with a recurrence-id

    def instance(self, recurrence_id: str | None) -> Component | None:
        """The series (None), or the exception whose recurrence-id is ``recurrence_id`` (its
        text as stored, or the same with the separators left out: 20260302T100000)."""
        if not recurrence_id:
            return self.main
        want = _compact(recurrence_id)
        for comp in self.exceptions:
            rid = comp.first("recurrence-id")
            if rid is not None and isinstance(rid.value, str) and _compact(rid.value) == want:
                return comp
        return None


def _compact(text: str) -> str:
    return text.replace("-", "").replace(":", "").rstrip("Z")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# ---------------------------------------------------------------- the message


def kolab_type(value: str | None) -> str | None:
    """``application/x-vnd.kolab.event`` -> ``event``; anything else -> None."""
    if not value:
        return None
    value = value.strip().lower()
    return value[len(TYPE_PREFIX) :] or None if value.startswith(TYPE_PREFIX) else None


def header_identity(raw: bytes) -> tuple[str, str] | None:
    """(type, uid) from a message's headers, or None when it is no Kolab object. Reads the
    headers only: this is what telling objects apart costs."""
    end = raw.find(b"\r\n\r\n", 0, HEADER_LIMIT)
    if end < 0:
        end = raw.find(b"\n\n", 0, HEADER_LIMIT)
    head = raw[: end if end >= 0 else HEADER_LIMIT]
    msg = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    kind = kolab_type(msg.get(TYPE_HEADER))
    if kind is None:
        return None
    subject = msg.get("Subject")
    uid = str(email.header.make_header(email.header.decode_header(subject))).strip() if subject else ""
    return (kind, uid) if uid else None


def xml_part(raw: bytes) -> bytes:
    """The bytes of the ``kolab.xml`` part of a Kolab message."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        param = part.get_param("name")
        name = (part.get_filename() or (param if isinstance(param, str) else "") or "").lower()
        if name == "kolab.xml" or part.get_content_type() in XML_TYPES:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                return payload
    raise KolabError("no kolab.xml part")


def parse_message(raw: bytes) -> KolabObject:
    """The object a Kolab 3 message holds (KolabError if it holds none)."""
    identity = header_identity(raw)
    if identity is None:
        raise KolabError(f"no {TYPE_HEADER}: {TYPE_PREFIX}<type> header and Subject (the object's UID)")
    kind, uid = identity
    obj = parse_xml(xml_part(raw), kind)
    if obj.uid and obj.uid != uid and _bare(obj.uid) != _bare(uid):
        raise KolabError(f"Subject {uid!r} is not the object's UID {obj.uid!r}")
    obj.uid = uid
    return obj


def _bare(uid: str) -> str:
    return uid[len("urn:uuid:") :] if uid.startswith("urn:uuid:") else uid


# ---------------------------------------------------------------- the XML


def parse_xml(data: bytes | str, kind: str) -> KolabObject:
    """An object's XML (xCal, xCard or Kolab's note format), as ``kind``."""
    raw = data.encode() if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw[:4096].upper() or b"<!ENTITY" in raw.upper():
        raise KolabError("a DOCTYPE or ENTITY in kolab.xml: refused")  # no entity expansion, ever
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise KolabError(f"kolab.xml is not well-formed XML: {e}") from None
    text = raw.decode("utf-8", errors="replace")
    top = _local(root.tag)
    if top == "icalendar":
        comps = [
            _component(c, _local(c.tag))
            for vcal in root
            if _local(vcal.tag) == "vcalendar"
            for block in vcal
            if _local(block.tag) == "components"
            for c in block
            if _local(c.tag) in _CALENDAR_COMPONENTS
        ]
        if not comps:
            raise KolabError("xCal without a vevent, vtodo or vjournal")
        main = next((c for c in comps if c.first("recurrence-id") is None), comps[0])
        rest = [c for c in comps if c is not main]
        return KolabObject(kind, main.text("uid") or "", text, main, rest)
    if top == "vcards":
        cards = [c for c in root if _local(c.tag) == "vcard"]
        if not cards:
            raise KolabError("xCard without a vcard")
        main = _flat(cards[0], "vcard")
        uid = main.text("uid") or ""
        return KolabObject(kind, uid, text, main)
    if top in ("vcard", "note", "configuration", "file"):
        main = _flat(root, top)
        return KolabObject(kind, main.text("uid") or "", text, main)
    raise KolabError(f"kolab.xml root <{top}> is not xCal, xCard or a Kolab note")


def _component(elem: ET.Element, name: str) -> Component:
    """An xCal component: <properties> holds the properties, <components> the alarms."""
    comp = Component(name)
    for block in elem:
        tag = _local(block.tag)
        if tag == "properties":
            for p in block:
                comp.add(_prop(p))
        elif tag == "components":
            for sub in block:
                inner = _component(sub, _local(sub.tag))
                comp.add(Prop(_local(sub.tag), inner.properties(), "component"))
    return comp


def _flat(elem: ET.Element, name: str) -> Component:
    """xCard and Kolab notes: the properties are the element's children."""
    comp = Component(name)
    for p in elem:
        if _local(p.tag) == "group":  # xCard property groups: their members are properties too
            for q in p:
                comp.add(_prop(q))
        else:
            comp.add(_prop(p))
    return comp


def _leaf_text(elem: ET.Element) -> str:
    return (elem.text or "").strip()


def _prop(elem: ET.Element) -> Prop:
    name = _local(elem.tag)
    params: dict[str, Any] = {}
    values = []
    for child in elem:
        if _local(child.tag) == "parameters":
            for param in child:
                inner = [_leaf_text(v) for v in param]
                params[_local(param.tag)] = (
                    (inner[0] if len(inner) == 1 else inner) if inner else _leaf_text(param)
                )
        else:
            values.append(child)
    if not values:  # Kolab's note format: <summary>text</summary>
        return Prop(name, _leaf_text(elem), "text", params)
    if len(values) == 1 and len(values[0]) == 0:
        return Prop(name, _leaf_text(values[0]), _local(values[0].tag), params)
    if len(values) == 1:  # a structured value: <recur><freq>WEEKLY</freq>...</recur>
        return Prop(name, _table(values[0]), _local(values[0].tag), params)
    tags = {_local(v.tag) for v in values}
    if len(tags) == 1 and all(len(v) == 0 for v in values):  # <categories><text/><text/>
        return Prop(name, [_leaf_text(v) for v in values], tags.pop(), params)
    return Prop(name, _table_of(values), "structured", params)  # xCard <n><surname/><given/>


def _table(elem: ET.Element) -> dict[str, Any]:
    return _table_of(list(elem))


def _table_of(children: list[ET.Element]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in children:
        tag = _local(child.tag)
        value: Any = _table(child) if len(child) else _leaf_text(child)
        if tag in out:
            out[tag] = [*out[tag], value] if isinstance(out[tag], list) else [out[tag], value]
        else:
            out[tag] = value
    return out
