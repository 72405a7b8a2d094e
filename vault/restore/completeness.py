"""An export's proof of completeness: the signed ledger entry that says what it holds.

Every export is recorded as an ``export.made`` entry naming its manifest's hash
(``manifest_sha256``: the sha256 of ``manifest.sha256``) and its item count. Once that entry is
committed, ``seal`` writes ``completeness.json`` into the export: the entry's canonical bytes,
its leaf index, the signed checkpoint that covers it and the RFC 9162 inclusion proof. So an
export cannot lose or gain an item, even with every checksum recomputed: ``verify-export``
(``vault/restore/export_check.py: check_completeness``) finds the manifest no longer hashes to
what the signed entry says.
"""

from __future__ import annotations

import json
from pathlib import Path

from vault.entries import Kind
from vault.restore.export_check import COMPLETENESS as FILE
from vault.store.ledger import Ledger

SEARCH_BACK = 100_000  # entries looked at from the end first (live ingest appends meanwhile)


class CompletenessError(Exception):
    pass


def _entry_of(ledger: Ledger, manifest_sha256: str):
    def scan(start: int):
        found = None
        for entry in ledger.entries(start):
            if (
                entry.kind == Kind.EXPORT_MADE
                and (entry.data or {}).get("manifest_sha256") == manifest_sha256
            ):
                found = entry
        return found

    start = max(1, ledger.size - SEARCH_BACK)
    return scan(start) or (scan(1) if start > 1 else None)


def seal(config, export_dir: Path | str, manifest_sha256: str) -> dict:
    """Write ``completeness.json`` into the export at ``export_dir``, after its ``export.made``
    entry is committed (by this process or the vault service); returns what it wrote."""
    ledger = Ledger.from_config(config, writable=False)
    try:
        entry = _entry_of(ledger, manifest_sha256)
        checkpoint = ledger.checkpoint()
        if entry is None or checkpoint is None or checkpoint.size < entry.seq:
            raise CompletenessError(
                f"no signed export.made entry names manifest {manifest_sha256[:16]}…: the export is not recorded"
            )
        proof = {
            "entry": entry.canonical().decode("utf-8"),
            "seq": entry.seq,
            "leaf_index": entry.seq - 1,
            "checkpoint": checkpoint.note.decode("utf-8"),
            "tree_size": checkpoint.size,
            "proof": ledger.inclusion_proof(entry.seq, checkpoint.size),
        }
    finally:
        ledger.close()
    (Path(export_dir) / FILE).write_text(json.dumps(proof, indent=1, sort_keys=True), encoding="utf-8")
    return proof
