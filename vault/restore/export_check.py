"""Offline verification of an export: needs only the export directory and the verifier key.

Checks, in order: the manifests hash to manifest.sha256; the checkpoint is signed by the
given key; every item's ledger entry is included in that checkpoint's tree (RFC 9162
inclusion proof) and names the blob whose sha256 the item claims; every message file (and,
in a production, every native, text and the load file) hashes as the manifest says; no file
is missing and none is extra; each witness's evidence:
its checkpoint signed by the same key, a cosigner's cosignature, and the RFC 9162 consistency
proof from that checkpoint to the export's. With ``witness_keys`` (cosigner verifier keys the
checker obtained independently) a cosignature by each of them is required.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vault.store.checkpoint import CheckpointError, verify_checkpoint_note, verify_cosignature
from vault.store.merkle import leaf_hash, verify_consistency, verify_inclusion

FIXED_FILES = {"manifest.json", "manifest.csv", "manifest.sha256", "checkpoint.txt", "verifier.key"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mbox_digests(path: Path) -> list[str]:
    from vault.ingest.importers import open_source

    return sorted(_sha(m.read()) for m in open_source(path, "mbox").scan() if hasattr(m, "read"))


def check_witnesses(manifest: dict, checkpoint, verifier_key: str, witness_keys=()) -> list[str]:
    """Problems with the witnesses' evidence in the manifest, as sentences."""
    evidence = manifest.get("witness", [])
    if not isinstance(evidence, list):
        return ["witness evidence is not a list"]
    problems: list[str] = []
    sound: list[bytes] = []  # witnessed checkpoints the export's checkpoint is proved to extend
    root = bytes.fromhex(checkpoint.root)
    for n, ev in enumerate(evidence, 1):
        where = f"witness evidence {n} ({ev.get('witness', '?') if isinstance(ev, dict) else '?'})"
        try:
            note = ev["checkpoint"].encode("utf-8")
            witnessed = verify_checkpoint_note(note, verifier_key)
            cons = ev["consistency"]
            proof = [bytes.fromhex(h) for h in cons["proof"]]
            if ev["type"] == "cosignature":
                verify_cosignature(note, ev["witness_key"])
        except CheckpointError as e:
            problems.append(f"{where}: {e}")
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            problems.append(f"{where}: malformed ({type(e).__name__}: {e})")
            continue
        if witnessed.origin != checkpoint.origin:
            problems.append(f"{where}: witnessed another log ({witnessed.origin})")
        elif (cons.get("from"), cons.get("to")) != (
            witnessed.size,
            checkpoint.size,
        ) or not verify_consistency(
            witnessed.size, checkpoint.size, proof, bytes.fromhex(witnessed.root), root
        ):
            problems.append(
                f"{where}: the export's checkpoint ({checkpoint.size} entries) is not consistent with the "
                f"witnessed one ({witnessed.size} entries)"
            )
        else:
            sound.append(note)
    for key in witness_keys:
        if not any(_cosigned(note, key.strip()) for note in sound):
            problems.append(f"no valid cosignature by witness {key.strip().split('+', 1)[0]} (the key given)")
    return problems


def _cosigned(note: bytes, key: str) -> bool:
    try:
        verify_cosignature(note, key)
        return True
    except CheckpointError:
        return False


def check_export(path: Path | str, verifier_key: str, witness_keys=()) -> list[str]:
    """Every problem found, as sentences; empty when the export is intact."""
    path = Path(path)
    problems: list[str] = []
    try:
        manifest_bytes = (path / "manifest.json").read_bytes()
        digest_lines = (path / "manifest.sha256").read_text(encoding="utf-8").splitlines()
        manifest = json.loads(manifest_bytes)
    except (OSError, ValueError) as e:
        return [f"cannot read the manifest: {e}"]
    for line in digest_lines:
        want, _, name = line.partition("  ")
        try:
            if _sha((path / name).read_bytes()) != want:
                problems.append(f"{name} does not match manifest.sha256")
        except OSError:
            problems.append(f"{name} is missing")
    try:
        checkpoint = verify_checkpoint_note(manifest["checkpoint"].encode("utf-8"), verifier_key.strip())
    except Exception as e:  # any failure to verify is the verdict, not a crash
        return problems + [f"checkpoint signature does not verify with the given key: {e}"]
    # the two convenience copies must say what the manifest says, or they are altered files
    for name, value in (
        ("checkpoint.txt", manifest["checkpoint"]),
        ("verifier.key", manifest.get("verifier_key", "")),
    ):
        try:
            if (path / name).read_text(encoding="utf-8").strip() != value.strip():
                problems.append(f"{name} differs from the copy in the manifest")
        except (OSError, UnicodeDecodeError):
            problems.append(f"{name} is missing or unreadable")
    problems += check_witnesses(manifest, checkpoint, verifier_key.strip(), witness_keys)
    root = bytes.fromhex(checkpoint.root)
    files: dict[str, list[str]] = {}
    for rec in manifest.get("items", []):
        ledger = rec["ledger"]
        entry = json.loads(ledger["entry"])
        if ledger["tree_size"] != checkpoint.size:
            problems.append(
                f"item {rec['item']}: proof is for tree size {ledger['tree_size']}, "
                f"checkpoint signs {checkpoint.size}"
            )
        elif not verify_inclusion(
            leaf_hash(ledger["entry"].encode("utf-8")),
            ledger["leaf_index"],
            checkpoint.size,
            [bytes.fromhex(h) for h in ledger["proof"]],
            root,
        ):
            problems.append(f"item {rec['item']}: ledger entry {ledger['seq']} is not in the signed tree")
        if entry.get("item") != rec["item"] or entry.get("data", {}).get("blob") != "sha256:" + rec["sha256"]:
            problems.append(f"item {rec['item']}: ledger entry {ledger['seq']} records another item or blob")
        files.setdefault(rec["file"], []).append(rec["sha256"])
    for listed in manifest.get("production", {}).get("files", []):  # load file, natives, texts
        files.setdefault(listed["file"], []).append(listed["sha256"])
    for name, digests in sorted(files.items()):
        target = path / name
        if not target.is_file():
            problems.append(f"{name} is missing")
        elif name.endswith(".mbox"):
            if _mbox_digests(target) != sorted(digests):
                problems.append(f"{name}: messages differ from the manifest")
        elif _sha(target.read_bytes()) != digests[0]:
            problems.append(f"{name} has been changed (sha256 differs from the manifest)")
    present = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}
    for extra in sorted(present - set(files) - FIXED_FILES):
        problems.append(f"{extra} is not in the manifest")
    return problems
