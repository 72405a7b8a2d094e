"""A purge that a crash cannot leave half done: the items go, and so does their content.

Retention sweeps and erasures purge through ``purge_items``, in three steps:

1. **intent**: the file ``purge-pending`` is written in the home (and fsynced) before anything
   else;
2. **record**: the ``retention.purged`` entries (and an erasure's certificate) are committed to
   the ledger in one commit; from here the items are gone for good: the catalog, the index,
   restore and search no longer see them;
3. **collect**: every blob that a purged item referenced and no retained item does is deleted
   from the store (a pack left with no live member is deleted, one with survivors rewritten),
   then the intent file is removed.

A crash anywhere between 1 and 3 leaves the intent file, and the next writer open of the vault
(``Vault.open(writer=True)``, so the service, an import, a sweep) or ``vaultctl verify --repair``
runs step 3 again (``finish_interrupted``). Step 3 deletes only the content of purged items that
no retained item shares (``leftovers``), so a crash before the commit deletes nothing, and
running it twice deletes nothing more. ``vaultctl verify`` reports purged content still in the
store as a problem, from the ledger itself (``vault/verify.py``).
"""

from __future__ import annotations

from pathlib import Path

from vault.durable import write_file
from vault.entries import EntrySpec, Kind
from vault.store.catalog import ERASURE, RETENTION

INTENT = "purge-pending"
# named points where the fault-injection tests kill the process (vault/faults.py)
RECORDED = "purge.recorded"


def _intent(vault) -> Path:
    return vault.config.home / INTENT


def _begin(vault) -> None:
    write_file(_intent(vault), b"a purge is recorded or about to be; its content is deleted after\n")


def leftovers(vault) -> set[str]:
    """Blobs still in the store whose every item is purged: what a purge still owes."""
    return {b for b in vault.catalog.purged_only_blobs() if vault.store.exists(b)}


def _collect(vault) -> dict:
    from vault import faults

    owed = leftovers(vault)
    done = vault.store.delete_blobs(owed) if owed else {"blobs": 0, "packs_removed": 0, "packs_rewritten": 0}
    faults.point("purge.collected")
    _intent(vault).unlink(missing_ok=True)
    return done


def purge_items(
    vault, rows: list[dict], why: dict[str, dict], actor: str | None, also: tuple[EntrySpec, ...] = ()
) -> dict:
    """Purge the catalog ``rows`` (``why``: item -> its rule and reason), recording ``also``
    (an erasure's certificate) in the same commit; then delete what only they referenced.
    Returns the store's counts (``blobs``: blobs deleted)."""
    from vault import faults

    _begin(vault)
    for row in rows:
        entry = why[row["item"]]
        vault.record(
            Kind.RETENTION_PURGED,
            item=row["item"],
            actor=actor,
            data={
                "how": entry.get("how") or RETENTION,  # or ERASURE: which kind of purge (ls, log, restore)
                "rule": entry.get("rule"),
                "request": entry.get("request"),
                "reason": entry["reason"],
                "blob": row["blob"],
            },
        )
    for spec in also:
        vault.record(spec.kind, item=spec.item, actor=spec.actor, data=spec.data)
    vault.commit()
    faults.point(RECORDED)
    return _collect(vault)


def describe_purge(purge: dict) -> str:
    """A catalog ``purges`` row for people: which kind of purge, by which rule or request."""
    if purge["how"] == ERASURE:
        return f"erased by erasure request {purge.get('request') or '?'} ({purge['at']})"
    return f"purged by retention rule {purge.get('rule') or '?'} ({purge['at']})"


def gone(vault, item: str) -> str:
    """Why purged ``item``'s content is gone, for an error: which purge took it."""
    purge = vault.catalog.purges([item]).get(item)
    return f"{item} was {describe_purge(purge) if purge else 'purged'}: its content is gone"


def orphans_of(vault, rows: list[dict]) -> set[str]:
    """The blobs of ``rows`` that no other retained item references: what purging them deletes."""
    covered = {r["item"] for r in rows}
    kept = {r["blob"] for r in vault.catalog.all_items() if r["item"] not in covered}
    return {r["blob"] for r in rows} - kept


def finish_interrupted(vault) -> dict | None:
    """Step 3 of a purge a crash interrupted (None when none was): run at every writer open."""
    if not _intent(vault).exists():
        return None
    return _collect(vault)


def repair(vault) -> dict:
    """``verify --repair``: delete every leftover of a purge, intent file or not."""
    return _collect(vault)
