"""What changed between two revisions of an object: its parsed properties compared, not its
text (a re-serialised but equal object has no changes).

``{uid, rev, changes: [{property, [index], old, new}]}``: one change per property whose value
differs; a property that may repeat (attendee, exdate, email, ...) is compared position by
position, each differing position a change with its ``index`` (``old`` or ``new`` is None where
one revision has fewer). Bookkeeping that every save changes (dtstamp, last-modified, the
xCard rev, sequence, prodid) is left out. ``instance`` compares one exception of a
recurring event (by its recurrence-id) instead of the series.
"""

from __future__ import annotations

from typing import Any

from vault.groupware.kolab import MULTI, KolabObject

IGNORED = frozenset(
    {"dtstamp", "last-modified", "last-modification-date", "rev", "sequence", "prodid", "x-kolab-version"}
)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def property_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict]:
    changes: list[dict] = []
    names = list(old) + [n for n in new if n not in old]
    for name in names:
        if name in IGNORED:
            continue
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if name in MULTI or isinstance(a, list) or isinstance(b, list):
            la, lb = _as_list(a) if a is not None else [], _as_list(b) if b is not None else []
            for i in range(max(len(la), len(lb))):
                x = la[i] if i < len(la) else None
                y = lb[i] if i < len(lb) else None
                if x != y:
                    changes.append({"property": name, "index": i, "old": x, "new": y})
        else:
            changes.append({"property": name, "old": a, "new": b})
    return changes


def diff(old: KolabObject, new: KolabObject, rev: int, instance: str | None = None) -> dict:
    """The changes from ``old`` to ``new`` (revision ``rev``)."""
    a, b = old.instance(instance), new.instance(instance)
    if a is None and b is None:
        raise LookupError(f"no instance {instance!r} of {new.uid} in either revision")
    return {
        "uid": new.uid,
        "rev": rev,
        "changes": property_changes(a.properties() if a else {}, b.properties() if b else {}),
    }
