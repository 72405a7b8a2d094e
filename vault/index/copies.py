"""What a search hit says of the archived copies it reports (catalog rows), beyond where they
sit: whether every one is expunged (the message is in the archive only), its Message-ID, and
the source each copy was imported from (``--output files``)."""

from __future__ import annotations


def describe_copies(hit, rows: list[dict]) -> None:
    hit.expunged = bool(rows) and all(r["expunged_at"] for r in rows)
    hit.message_id = next((r["message_id"] for r in rows if r.get("message_id")), None)
    hit.sources = [f"{r['origin']} {r['source_key'] or ''}".rstrip() for r in rows if r.get("origin")]
