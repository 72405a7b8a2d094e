"""E-discovery export: the messages a search found, with a manifest a court can check.

An export directory holds the messages (bytes identical to the archive), ``manifest.json``
and ``manifest.csv`` (per item: id, blob sha256, custodians, folders, dates, subject, the
ledger entry that recorded it with a Merkle inclusion proof to a signed checkpoint), the
signed checkpoint itself, the witnesses' evidence (each one's newest witnessed checkpoint, a
cosigner's with its cosignature, and the consistency proof from it to the export's checkpoint),
and ``manifest.sha256``, the hash of both manifests. It is
checked offline by ``vault.restore.export_check`` with nothing but the export and the
vault's public verifier key. With a ``Production`` (``--load-file``), ``vault.restore.loadfile``
adds a review platform's load file, natives and texts, listed in the manifest too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vault.access import MailScope
from vault.archive import Vault
from vault.audit import record_audit
from vault.entries import Kind
from vault.model import format_time, json_bytes, now, parse_time
from vault.recording import ensure_recordable
from vault.restore import loadfile
from vault.restore.completeness import seal
from vault.restore.targets import MboxTarget
from vault.search import Found, find
from vault.store.backends.base import StoreError

FORMAT = "vault-export/2"  # /2: completeness.json (vault/restore/completeness.py)
CSV_FIELDS = [
    "file",
    "item",
    "sha256",
    "custodians",
    "folders",
    "internal_date",
    "appended_at",
    "subject",
    "from",
    "ledger_seq",
]


class ExportError(Exception):
    pass


@dataclass
class ExportReport:
    path: str
    messages: int
    items: int
    manifest_sha256: str
    audit: str = ""
    documents: int = 0  # with a load file: the review documents (messages and attachments)
    load_file: str = ""
    unreadable: list[dict] = field(default_factory=list)  # {"item", "reason"}: left out, listed


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def collect(vault: Vault, hits, dedupe: bool) -> list[dict]:
    """One record per archived item behind the hits (one per blob with ``dedupe``)."""
    records: list[dict] = []
    for hit in hits:
        found = [vault.catalog.item(i) for i in hit.item_ids]
        items = [i for i in found if i is not None and not i.get("purged_at")]
        if dedupe and items:
            items = items[:1]
        for item in items:
            records.append(
                {
                    "item": item["item"],
                    "blob": item["blob"],
                    "custodians": sorted(hit.custodians),
                    "folders": sorted(hit.folders) if dedupe else [item["mailbox"]],
                    "internal_date": item["internal_date"],
                    "appended_at": item["appended_at"],
                    "subject": hit.subject,
                    "from": hit.from_,
                    "ledger_seq": item["appended_seq"],
                }
            )
    return records


def write_export(
    vault: Vault,
    records: list[dict],
    path: Path,
    fmt: str,
    *,
    query: str,
    actor: str | None,
    production: loadfile.Production | None = None,
) -> ExportReport:
    if fmt not in ("eml", "mbox"):
        raise ExportError(f"unknown export format {fmt!r} (eml or mbox)")
    if production is not None:
        if fmt != "eml":
            raise ExportError("a load file needs one native file per message: use --format eml")
        try:
            production.check()
        except loadfile.ProductionError as e:
            raise ExportError(str(e)) from None
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise ExportError(f"{path} exists and is not empty: choose a new export directory")
    try:
        (path / "messages").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"{path}: cannot create the export directory: {e.strerror or e}") from None
    checkpoint = vault.ledger.checkpoint()
    if checkpoint is None:
        raise ExportError("the ledger has no signed checkpoint yet")
    mbox = MboxTarget(path / "messages" / "messages.mbox") if fmt == "mbox" else None
    producer = loadfile.Producer(path, production, vault.catalog) if production else None
    unreadable: list[dict] = []
    readable: list[dict] = []
    for rec in records:
        try:
            data = vault.store.get(rec["blob"])
        except StoreError as e:  # a corrupt or missing blob: left out and listed, the rest exported
            unreadable.append({"item": rec["item"], "reason": str(e)})
            continue
        readable.append(rec)
        n = len(readable)
        rec["sha256"] = _sha(data)
        when = parse_time(rec["internal_date"]) if rec["internal_date"] else None
        if mbox is not None:
            mbox.add(data, flags=[], internal_date=when, uid=n)
            rec["file"] = "messages/messages.mbox"
        else:
            rec["file"] = f"messages/{n:06d}-{rec['sha256'][:12]}.eml"
            (path / rec["file"]).write_bytes(data)
        if producer is not None:
            producer.add(rec, data)
        entry = vault.ledger.get(rec["ledger_seq"])
        rec["ledger"] = {
            "seq": entry.seq,
            "entry": entry.canonical().decode("utf-8"),
            "leaf_index": entry.seq - 1,
            "tree_size": checkpoint.size,
            "proof": vault.ledger.inclusion_proof(entry.seq, checkpoint.size),
        }
    if mbox is not None:
        mbox.close()
    note, verifier_key = checkpoint.note.decode("utf-8"), vault.ledger.verifier_key()
    manifest: dict = {
        "format": FORMAT,
        "query": query,
        "created": format_time(now()),
        "actor": actor,
        "checkpoint": note,
        "verifier_key": verifier_key,
        # each witness's newest checkpoint and the consistency proof to this one (export_check)
        "witness": vault.witnesses.evidence(vault.ledger, checkpoint),
        "items": readable,
    }
    if unreadable:
        manifest["unreadable"] = unreadable
    produced = producer.finish() if producer is not None else None
    if produced is not None:  # the load file, natives and texts: every file with its sha256
        manifest["production"] = produced
    # a folder name that is not UTF-8 (vault/model.py): \udcNN escapes in the JSON, its bytes in the CSV
    manifest_bytes = json_bytes(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False))
    (path / "manifest.json").write_bytes(manifest_bytes)
    with (path / "manifest.csv").open("w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        w = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for rec in readable:
            w.writerow(
                {**rec, "custodians": ";".join(rec["custodians"]), "folders": ";".join(rec["folders"])}
            )
    csv_bytes = (path / "manifest.csv").read_bytes()
    (path / "checkpoint.txt").write_text(note, encoding="utf-8")
    (path / "verifier.key").write_text(verifier_key + "\n", encoding="utf-8")
    digest = f"{_sha(manifest_bytes)}  manifest.json\n{_sha(csv_bytes)}  manifest.csv\n"
    (path / "manifest.sha256").write_text(digest, encoding="utf-8")
    report = ExportReport(
        str(path),
        len({r["file"] for r in readable}),
        len(readable),
        _sha(digest.encode()),
        unreadable=unreadable,
    )
    if produced is not None:
        report.documents, report.load_file = produced["documents"], produced["load_file"]
    return report


def export_records(
    vault: Vault,
    index,
    query: str,
    *,
    scope: MailScope | None = None,
    custodian: str | None = None,
    dedupe: bool = False,
    at: str | None = None,
) -> tuple[list[dict], Found]:
    """The records of everything ``query`` finds within ``scope`` (vault/access.py: a
    reviewer's matters' custodians and date ranges), and the search behind them; ``is:``
    clauses judge flags as at ``at`` (None: now)."""
    found = find(vault, index, query, scope=scope, custodian=custodian, limit=None, at=at)
    return collect(vault, found.hits, dedupe), found


def export_data(query: str, found: Found, fmt: str, dedupe: bool, path: str, report: ExportReport) -> dict:
    """The ``export.made`` entry's data."""
    data: dict = {
        "query": query,
        "custodian": found.custodian,
        "format": fmt,
        "dedupe": dedupe,
        "path": path,
        "items": report.items,
        "manifest_sha256": report.manifest_sha256,
    }
    if found.scope is not None:
        data["scope"] = found.scope
    if report.load_file:
        data.update(load_file=report.load_file, documents=report.documents)
    if report.unreadable:
        data["unreadable"] = [u["item"] for u in report.unreadable]
    return data


def search_and_export(
    vault: Vault,
    index,
    query: str,
    path: Path,
    fmt: str,
    *,
    custodian: str | None = None,
    dedupe: bool = False,
    actor: str | None = None,
    scope: MailScope | None = None,
    production: loadfile.Production | None = None,
    at: str | None = None,
) -> ExportReport:
    """Export what ``query`` finds (within ``scope``); the export is recorded in the audit
    trail (with this process's writer, or by the vault service while it holds the vault)."""
    ensure_recordable(vault)  # refused before any work when it could not be audited
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{path} exists and is not empty: choose a new export directory")
    records, found = export_records(
        vault, index, query, scope=scope, custodian=custodian, dedupe=dedupe, at=at
    )
    # audit first: the export is made aside (a private directory beside it) and appears at
    # ``path`` only once its export.made entry is committed; unrecorded, it is deleted unseen
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.unrecorded-", dir=path.parent))
    except OSError as e:
        raise ExportError(f"{path}: cannot create the export directory: {e.strerror or e}") from None
    try:
        report = write_export(vault, records, aside, fmt, query=query, actor=actor, production=production)
        report.path = str(path)
        data = export_data(query, found, fmt, dedupe, str(path.resolve()), report)
        if scope is not None:
            data.update(scope.caller.audit_fields())
        report.audit = record_audit(vault, Kind.EXPORT_MADE, actor=actor, data=data)
        seal(vault.config, aside, report.manifest_sha256)  # the signed entry's proof, into the export
        os.replace(aside, path)  # onto nothing, or onto an empty directory
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return report
