"""Whole-vault verification: the ledger's chain and signatures, its witnesses, every blob it
references (located through the pack indexes, which must match their packs), and the derived
state (catalog, search index) replayed from the ledger and compared (vault/derived.py)."""

from __future__ import annotations

from vault.archive import Vault
from vault.entries import CONTENT_KINDS, Kind
from vault.model import Problem
from vault.store.ledger import LedgerError


def _blobs_of(vault: Vault) -> tuple[set[str], set[str]] | None:
    """(blobs some retained item points to, blobs only purged items point to), read from the
    ledger itself (the source of truth), not from the derived catalog; None when the ledger
    cannot be read."""
    # keyed by Entry.item as recorded (content and purge entries always name one)
    item_blob: dict[str | None, str] = {}
    purged: set[str | None] = set()
    try:
        for entry in vault.ledger.entries():
            if entry.kind in CONTENT_KINDS:
                item_blob[entry.item] = entry.data["blob"]
            elif entry.kind == Kind.RETENTION_PURGED:
                purged.add(entry.item)
    except LedgerError:
        return None
    retained = {blob for item, blob in item_blob.items() if item not in purged}
    return retained, {blob for item, blob in item_blob.items() if item in purged} - retained


def referenced_blobs(vault: Vault) -> set[str]:
    """Blobs that some item not yet purged points to, read from the ledger."""
    blobs = _blobs_of(vault)
    # the ledger itself is damaged (verify reports how); still check the blobs the catalog
    # knows, so one report covers both
    return set(vault.catalog.referenced_blobs()) if blobs is None else blobs[0]


def check_vault(vault: Vault, *, read_data: bool = False, progress=None) -> list[Problem]:
    problems = list(vault.ledger.verify(progress=progress))
    problems += vault.witnesses.check(vault.ledger)
    blobs = _blobs_of(vault)
    referenced = set(vault.catalog.referenced_blobs()) if blobs is None else blobs[0]
    wanted = referenced | set(vault.ledger.sealed_blobs())
    problems += vault.store.check(wanted, read_data=read_data, progress=progress)
    problems += vault.store.check_pack_indexes(wanted, read_data=read_data)
    if blobs is not None:  # a ledger that cannot be read has nothing to replay
        from vault.derived import check_derived

        problems += check_derived(vault)
    for blob in sorted(blobs[1] if blobs else ()):
        if vault.store.exists(blob):
            problems.append(Problem(f"blob {blob}", PURGED_LEFT))
    return problems


PURGED_LEFT = "content of purged items is still in the store (repair: verify --repair)"


def unreadable_only(vault: Vault, problems: list[Problem]) -> bool:
    """Whether every problem is a message's blob (or a pack of them) that cannot be read: the
    ledger, its sealed segments, its signatures and its witnesses hold, only some messages are
    damaged or missing (the "finished, some items unreadable" outcome, not a broken vault)."""
    segments = {f"blob {b}" for b in vault.ledger.sealed_blobs()}
    return bool(problems) and all(
        p.where.startswith(("blob ", "pack "))
        and p.what != PURGED_LEFT
        and p.where not in segments
        and not _derived(p)
        for p in problems
    )


def _derived(p: Problem) -> bool:
    """A pack index problem (ContentStore.check_pack_indexes): derived state that is damaged
    and repairable, not a message that cannot be read (a pack index whose pack is missing is)."""
    if p.where.startswith("pack index "):
        return "its pack is missing" not in p.what
    return "pack index" in p.what or "location index" in p.what


def repair(config) -> dict:
    """``verify --repair``: finish every purge (delete the content only purged items
    referenced), then rebuild what is derived and damaged (vault/derived.py); returns what
    it did."""
    from vault.derived import repair as rebuild_derived
    from vault.purge import repair as finish_purges

    with Vault.open(config, writer=True) as vault:
        at_open = vault.purge_finished or {}  # the open itself finished an interrupted purge
        done = finish_purges(vault)
        derived = rebuild_derived(vault)
        if vault.index_rebuilt and "index" not in derived:
            derived["index"] = len(vault.index) if vault.index is not None else 0
    return {"purged_blobs_deleted": at_open.get("blobs", 0) + done["blobs"], **derived}
