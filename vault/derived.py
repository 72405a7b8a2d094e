"""Derived state checked against the ledger: the catalog and the search index.

Both are views the ledger can regenerate; nothing may answer from one that is behind the
ledger or damaged as if it were whole. Two levels:

- **on open** (``problems_on_open``, every restore, search and export): cheap looks that
  cost milliseconds at 100k items: the catalog's and the index's "applied up to ledger entry
  N" against the ledger's size, the catalog's row counts against the counts its own applies
  recorded (rows deleted behind its back), the index's document count against the count its
  last commit recorded (documents deleted), and whether the index opens at all (a broken
  ``meta.json``). Readers refuse with the problem (``DerivedStateError``); what a writer's
  catch-up heals (behind) is healed first when the vault is free (``heal``).
- **in verify** (``check_derived``): a replay of the ledger into a new catalog in a
  temporary file, compared table by table, row by row (SQL ``EXCEPT``), naming each item or
  row that is missing, extra or different; and the index's documents (their blob keys,
  read from a fast field) against the blobs the replayed catalog says are searchable.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

from vault.model import Problem


class DerivedStateError(RuntimeError):
    """The catalog or the search index is behind the ledger or damaged: not answered from."""


def _index_problem(config, ledger_size: int, index=None) -> tuple[str | None, object]:
    from vault.index.indexer import IndexDamaged, IndexOutdated, SearchIndex

    if index is None:
        try:
            index = SearchIndex.of(config)
        except (IndexDamaged, IndexOutdated, FileNotFoundError) as e:
            return str(e), None
    try:
        return index.state_problem(ledger_size), index
    except ValueError as e:  # Tantivy cannot read a segment the index names
        return f"search index {index.path} is damaged ({e})", index


def problems_on_open(vault, index=None, *, with_index: bool = False) -> list[str]:
    """The cheap checks: of the catalog always, of the search index with ``with_index``
    (``index``: the one the caller opened)."""
    size = vault.ledger.size
    found = list(vault.catalog.damage())
    if vault.catalog.applied_seq < size:
        found.append(
            f"the catalog is behind the ledger (it has applied entry {vault.catalog.applied_seq} of {size})"
        )
    if with_index:
        problem, _ = _index_problem(vault.config, size, index)
        if problem:
            found.append(problem)
    return found


def refusal(problems: list[str]) -> DerivedStateError:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return DerivedStateError(
        f"{problems[0]}{more}: not answering from it; 'vaultctl verify' says what is wrong and "
        "'vaultctl verify --repair' rebuilds it from the ledger"
    )


def heal(config) -> bool:
    """Let the vault's writer catch the catalog and the index up (and rebuild a damaged index)
    when nobody holds the vault and the home is writable; whether it could."""
    from vault.archive import Vault, VaultBusy

    try:
        Vault.open(config, writer=True).close()
    except VaultBusy:  # VaultReadOnly too
        return False
    return True


def open_current(config, *, with_index: bool):
    """``(vault, index)`` for a reader (``index`` None without ``with_index``), both known
    current by the cheap checks. What is only behind (a crash, an interrupted rebuild) is
    healed first by the vault's writer when the vault is free; anything else, or a vault
    another writer holds, is refused (DerivedStateError) with the problem."""
    from vault.archive import Vault
    from vault.index.indexer import IndexDamaged, IndexOutdated, SearchIndex

    for attempt in (1, 2):
        index = None
        if with_index:
            try:
                index = SearchIndex.of(config)
            except IndexOutdated:
                raise
            except (IndexDamaged, FileNotFoundError) as e:
                if attempt == 1 and heal(config):  # the writer rebuilds what it cannot open
                    continue
                raise DerivedStateError(str(e)) from None
        vault = Vault.open(config)
        found = problems_on_open(vault, index, with_index=with_index)
        if not found:
            return vault, index
        vault.close()
        if index is not None:
            index.close()
        healable = all("is behind the ledger" in p for p in found)
        if not (attempt == 1 and healable and heal(config)):
            raise refusal(found)
    raise AssertionError("unreachable")


def require_current_in_service(service, *, with_index: bool) -> None:
    """The same checks in the vault service, on its writer's thread (between commits), after
    its index committed what it holds: so live ingest's lag is never taken for damage."""

    def check(vault) -> list[str]:
        vault.flush_index()
        return problems_on_open(vault, vault.index, with_index=with_index)

    found = service.write(check)
    if found:
        raise refusal(found)


# ------------------------------------------------------------ verify


def _searchable(catalog) -> dict[int, str]:
    """schema key -> blob, of every blob some item not purged points to."""
    from vault.index.schema import blob_key

    return {blob_key(b): b for b in catalog.referenced_blobs()}


def _catalog_problems(live, fresh) -> list[Problem]:
    out = []
    for table, key, what in live.differences(fresh):
        where = f"catalog item {key}" if table == "items" else f"catalog {table} {key}"
        text = {
            "missing": "missing: the ledger has it",
            "extra": "not in the ledger",
            "differs": "differs from what the ledger says",
        }[what]
        out.append(Problem(where, f"{text} (repair: verify --repair)"))
    return out


def _index_problems(config, ledger_size: int, fresh) -> list[Problem]:
    """The index's documents against what the replayed catalog makes searchable."""
    from vault.index.indexer import SearchIndex

    problem, index = _index_problem(config, ledger_size)
    if index is None:
        return [Problem("search index", f"{problem} (repair: verify --repair)")]
    assert isinstance(index, SearchIndex)
    try:
        if index.applied_seq < fresh.applied_seq:
            return []  # behind (a crash, a writer at work): the next writer catches it up
        out = [Problem("search index", problem)] if problem else []
        have = Counter(index.keys())
        want = _searchable(fresh)
        for key in sorted(set(want) - set(have)):
            out.append(
                Problem(
                    f"search index {want[key]}",
                    "not indexed: its messages cannot be found (repair: verify --repair)",
                )
            )
        for key in sorted(set(have) - set(want)):
            out.append(
                Problem(
                    "search index",
                    f"a document (key {key}) no retained message has (repair: verify --repair)",
                )
            )
        for key, n in sorted(have.items()):
            if n > 1 and key in want:
                out.append(Problem(f"search index {want[key]}", f"indexed {n} times"))
        return out
    except ValueError as e:
        return [Problem("search index", f"damaged ({e}) (repair: verify --repair)")]
    finally:
        index.close()


def check_derived(vault, progress=None) -> list[Problem]:
    """Replay the ledger into a new catalog and compare it with the catalog and the index.
    Compared as of the catalog's own applied entry: a catalog behind the ledger (a crash)
    is caught up by the next open and is no problem; a damaged one is."""
    from vault.store.catalog import Catalog

    live = vault.catalog
    upto = min(live.applied_seq, vault.ledger.size)
    with tempfile.TemporaryDirectory(prefix="vault-verify-") as tmp:
        fresh = Catalog(Path(tmp) / "replay.sqlite")
        try:
            fresh.apply(vault.ledger.entries(1, upto))
            problems = _catalog_problems(live, fresh)
            if progress:
                progress(0)
            if upto < vault.ledger.size:
                fresh.apply(vault.ledger.entries(upto + 1))
            problems += _index_problems(vault.config, vault.ledger.size, fresh)
        finally:
            fresh.close()
    return problems


def repair(vault) -> dict:
    """Rebuild what is derived and damaged (``vault``: opened as the writer): pack indexes
    from their packs (encrypted: a pack whose sealed index is damaged, from the location
    index), the store's location index, the catalog, the search index. Says what it did."""
    from vault.rebuild import rebuild_catalog

    done: dict = {}
    rewritten = vault.store.repair_pack_indexes()
    if rewritten:
        vault.store.rebuild_index()
        # encrypted, a pack holds its index: one whose trailer was damaged is written again
        done["packs_rewritten" if vault.store.indexes.in_pack else "pack_indexes"] = rewritten
    catalog_damage = vault.catalog.damage() or _catalog_problems_now(vault)
    if catalog_damage:
        rebuild_catalog(vault)
        done["catalog"] = len(catalog_damage)
    if _index_problems(vault.config, vault.ledger.size, vault.catalog):
        vault.rebuild_index()
        done["index"] = len(vault.index) if vault.index is not None else 0
    return done


def _catalog_problems_now(vault) -> list[Problem]:
    from vault.store.catalog import Catalog

    with tempfile.TemporaryDirectory(prefix="vault-repair-", dir=os.fspath(vault.config.home)) as tmp:
        fresh = Catalog(Path(tmp) / "replay.sqlite")
        try:
            fresh.apply(vault.ledger.entries(1, vault.catalog.applied_seq))
            return _catalog_problems(vault.catalog, fresh)
        finally:
            fresh.close()
