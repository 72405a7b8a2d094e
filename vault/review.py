"""Review tags: a reviewer's call on an item within a matter, kept in the ledger.

A tag is a ``review.tagged`` entry (item: the ItemId; data: matter, tag, note). The latest
entry for (matter, item) is the item's tag in that matter; ``cleared`` takes it back. Tags are
read back from the ledger (the catalog's item log finds one item's entries; a matter's tags
walk the ledger's review entries), so nothing else holds them and nothing can drift.
"""

from __future__ import annotations

from vault.entries import Kind

TAGS = ("responsive", "privileged", "not_relevant")
CLEARED = "cleared"
LABELS = {"responsive": "Responsive", "privileged": "Privileged", "not_relevant": "Not relevant"}


class TagError(ValueError):
    pass


def check_tag(tag: str) -> str:
    if tag not in (*TAGS, CLEARED):
        raise TagError(f"unknown tag {tag!r}: one of {', '.join((*TAGS, CLEARED))}")
    return tag


def tag_data(matter: str, tag: str, note: str = "") -> dict:
    data = {"matter": matter, "tag": check_tag(tag)}
    if note:
        data["note"] = note[:2000]
    return data


def item_tags(vault, item: str) -> dict[str, str]:
    """matter -> the item's current tag there."""
    out: dict[str, str] = {}
    for seq in vault.catalog.log_seqs(item=item):
        entry = vault.ledger.get(seq)
        if entry.kind == Kind.REVIEW_TAGGED:
            out[entry.data["matter"]] = entry.data["tag"]
    return {m: t for m, t in out.items() if t != CLEARED}


def matter_tags(vault, matter: str) -> dict[str, dict]:
    """item -> {tag, actor, time} of its current tag in ``matter``."""
    out: dict[str, dict] = {}
    for entry in vault.ledger.entries():
        if entry.kind == Kind.REVIEW_TAGGED and entry.data.get("matter") == matter and entry.item:
            out[entry.item] = {"tag": entry.data["tag"], "actor": entry.actor, "time": entry.time}
    return {i: t for i, t in out.items() if t["tag"] != CLEARED}
