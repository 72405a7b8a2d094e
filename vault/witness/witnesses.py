"""The vault's witnesses: each new signed checkpoint goes to every configured witness, and the
home keeps the newest evidence of each (``[witness] path``, default ``<home>/witness/``).

Witnesses (``[witness]`` in config.toml):
- *cosigners*: C2SP witnesses (``vaultctl witness serve``), each ``"<url> <verifier key>"``.
  The vault submits its checkpoint with a consistency proof from the size the witness last
  cosigned; the witness cosigns only an extension of what it saw.
- *the bucket*: with ``bucket = true`` and an S3 store, ``checkpoints/<size>-<root>.note``
  objects under Object Lock (vault/witness/bucket.py).

The home's copy (``witness/<id>.json``: the checkpoint as witnessed, the tree's compact nodes
at that size, the witness's evidence) lets every open check, offline and cheaply, that the
ledger is not older than what was witnessed and extends it: a consistency proof from the
compact nodes and the leaves added since, O(entries since) hashing. A writer's open and
``verify`` also ask the witnesses themselves, since a home rolled back whole carries an old
copy too: a cosigner answers a stale size with the size it cosigned (409), the bucket lists
every checkpoint it holds. A witness that cannot be reached is skipped with a warning (and
asked again after ``retry_seconds``): archiving goes on, and the next submission proves the
whole extension. Evidence of a rollback or a rewrite is never skipped: ``WitnessRefused``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from vault.model import Problem, Refused
from vault.store import merkle
from vault.store.backends.base import StoreError
from vault.store.checkpoint import (
    Checkpoint,
    CheckpointError,
    sign,
    verify_checkpoint_note,
    verify_cosignature,
)
from vault.witness import protocol
from vault.witness.bucket import Bucket
from vault.witness.cosigner import Cosigner, Unreachable

log = logging.getLogger("vault.witness")


class WitnessRefused(Refused):
    """The ledger is older than, or not consistent with, a witnessed checkpoint."""


class NotTrusted(Exception):
    """The witness does not witness this ledger (unknown origin, or not its key)."""


@dataclass
class Record:
    """The newest checkpoint one witness vouched for, as the home keeps it."""

    size: int
    root: bytes
    note: bytes  # the checkpoint; a cosigner's with its cosignature line
    nodes: list[bytes]  # the tree's compact nodes at ``size``
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "note": self.note.decode("utf-8"),
            "nodes": [h.hex() for h in self.nodes],
            "evidence": self.evidence,
        }


def rolled_back(ledger, who: str, witnessed: int, size: int) -> str:
    return (
        f"{ledger.path} holds {size} entries, but {who} witnessed a checkpoint of {witnessed}: the "
        f"ledger was rolled back (replaced by an older copy); restore one holding at least "
        f"{witnessed} entries"
    )


def rewritten(ledger, who: str, witnessed: int, size: int) -> str:
    return (
        f"{ledger.path}: its checkpoint of {size} entries is not consistent with the checkpoint of "
        f"{witnessed} entries {who} witnessed: history was rewritten (and re-signed)"
    )


class _Witness:
    """One witness: its id (the home's record file), how to check a record, how to submit."""

    id: str

    def check_record(self, note: bytes, ledger) -> tuple[int, bytes]:
        raise NotImplementedError

    def submit(self, ledger, record: Record | None, *, opening: bool) -> Record | None:
        """Vouch for the ledger's checkpoint: the new record (None: nothing to record), or
        WitnessRefused; ``opening``: a writer opens, so look for what the home's copy lacks."""
        raise NotImplementedError

    def consult(self, ledger, record: Record | None) -> list[Problem]:
        raise NotImplementedError


class _CosignerWitness(_Witness):
    def __init__(self, cosigner: Cosigner):
        self.c = cosigner
        self.id = f"cosigner-{cosigner.key_id}"

    def __str__(self) -> str:
        return str(self.c)

    def check_record(self, note: bytes, ledger) -> tuple[int, bytes]:
        cp, _ = verify_cosignature(note, self.c.vkey)
        return cp.size, bytes.fromhex(cp.root)

    def submit(self, ledger, record: Record | None, *, opening: bool = False) -> Record | None:
        cp, cosigned, when = self._add(ledger, record)
        nodes = ledger.compact_nodes() if cp.size else []
        return Record(cp.size, bytes.fromhex(cp.root), cosigned, nodes, {"cosigned_at": when})

    def _add(self, ledger, record: Record | None) -> tuple[Checkpoint, bytes, int]:
        """add-checkpoint with the ledger's checkpoint: the checkpoint, cosigned, and the
        cosignature's time. A witness whose newest checkpoint is larger, or not extended by
        this one, refuses (409 with its size, 422): WitnessRefused."""
        cp = _checkpoint(ledger)
        old = record.size if record else 0
        for _ in range(2):
            if old > cp.size:
                raise WitnessRefused(rolled_back(ledger, str(self), old, cp.size))
            nodes = record.nodes if record is not None and record.size == old else None
            answer = self.c.add_checkpoint(old, _proof(ledger, old, cp.size, nodes), cp.note)
            if answer.status == protocol.OK:
                cosigned = cp.note + answer.body
                try:
                    got, when = verify_cosignature(cosigned, self.c.vkey)
                except CheckpointError as e:
                    raise Unreachable(
                        f"{self}: its answer is no cosignature by the configured key ({e})"
                    ) from None
                if got.size != cp.size or got.root != cp.root:
                    raise Unreachable(f"{self}: cosigned something else")
                return cp, cosigned, when
            if answer.status == protocol.CONFLICT:
                try:
                    have = protocol.parse_size(answer.body)
                except protocol.ProtocolError as e:
                    raise Unreachable(f"{self}: {e}") from None
                if have > cp.size:
                    raise WitnessRefused(rolled_back(ledger, str(self), have, cp.size))
                if have == old:  # the same size with another root
                    raise WitnessRefused(rewritten(ledger, str(self), have, cp.size))
                old = have  # the home's copy is stale (or gone): prove from what the witness has
                continue
            if answer.status == protocol.UNPROCESSABLE:
                raise WitnessRefused(rewritten(ledger, str(self), old, cp.size))
            detail = answer.body.decode("utf-8", "replace").strip()[:200]
            if answer.status in (protocol.FORBIDDEN, protocol.NOT_FOUND):
                raise NotTrusted(
                    f"{self} does not witness this ledger ({answer.status}: {detail}); on the witness: "
                    f"vaultctl witness trust DIR <home>/keys/ledger.ed25519.pub"
                )
            raise Unreachable(f"{self} answered {answer.status}: {detail}")
        raise Unreachable(f"{self}: its state changed while the vault submitted")

    def consult(self, ledger, record: Record | None) -> list[Problem]:
        try:
            self._add(ledger, record)
        except WitnessRefused as e:
            return [Problem(str(self), str(e))]
        except (NotTrusted, Unreachable) as e:
            return [Problem(str(self), f"could not check the ledger against the witness: {e}")]
        return []


class _BucketWitness(_Witness):
    id = "bucket"

    def __init__(self, bucket: Bucket):
        self.b = bucket

    def __str__(self) -> str:
        return str(self.b)

    def check_record(self, note: bytes, ledger) -> tuple[int, bytes]:
        cp = verify_checkpoint_note(note, ledger.verifier_key())
        return cp.size, bytes.fromhex(cp.root)

    def _scan(self, ledger, from_size: int, known: dict[int, bytes] | None = None) -> list[Problem]:
        """Every locked checkpoint of at least ``from_size`` entries against the ledger;
        ``known``: roots already established for some sizes (the others cost a pass over
        every leaf)."""
        try:
            listed = self.b.listed(from_size)
        except StoreError as e:
            raise Unreachable(f"{self}: {e}") from None
        problems: list[Problem] = []
        size = ledger.size
        for obj in listed:
            if obj.deleted:
                problems.append(
                    Problem(f"{self.b.backend.name}{obj.key}", "a delete marker hides this locked checkpoint")
                )
        newest = max((o.size for o in listed), default=0)
        if newest > size:
            return problems + [Problem(str(self), rolled_back(ledger, str(self), newest, size))]
        cp = ledger.checkpoint()
        roots = dict(known or {})
        if cp is not None:
            roots[cp.size] = bytes.fromhex(cp.root)
        missing = {o.size for o in listed} - set(roots)
        if missing:
            roots.update(ledger.roots_at(missing))
        for obj in listed:
            if roots.get(obj.size) != obj.root:
                problems.append(Problem(str(self), rewritten(ledger, f"{self} ({obj.key})", obj.size, size)))
                break
        return problems

    def submit(self, ledger, record: Record | None, *, opening: bool = False) -> Record | None:
        cp = _checkpoint(ledger)
        if opening or record is None:
            # every checkpoint locked since the home's copy (all of them without one) must be
            # one this ledger extends, and none may be larger
            # (check_open has proved the ledger extends the home's copy: its root is known)
            found = self._scan(
                ledger, record.size if record else 0, {record.size: record.root} if record else None
            )
            refusals = [p for p in found if "delete marker" not in p.what]
            if refusals:
                raise WitnessRefused(refusals[0].what)
        if not cp.size:
            return None
        try:
            evidence = self.b.record(cp.size, cp.root, cp.note)
        except StoreError as e:
            raise Unreachable(f"{self}: {e}") from None
        return Record(cp.size, bytes.fromhex(cp.root), cp.note, ledger.compact_nodes(), evidence)

    def consult(self, ledger, record: Record | None) -> list[Problem]:
        try:
            return self._scan(ledger, 0)
        except Unreachable as e:
            return [Problem(str(self), f"could not check the ledger against the bucket: {e}")]


def _checkpoint(ledger) -> Checkpoint:
    """The ledger's signed checkpoint; an empty ledger's is signed now, at size 0, so a
    witness can still say it saw more (a ledger deleted and started again)."""
    cp = ledger.checkpoint()
    if cp is not None:
        return cp
    return sign(ledger.origin, 0, merkle.root([]), ledger.key, ledger.key_name)


def _proof(ledger, old: int, new: int, nodes: list[bytes] | None) -> list[bytes]:
    """RFC 9162 consistency proof from ``old`` to ``new`` entries: from the compact nodes at
    ``old`` and the leaves since when the home has them, else from every leaf."""
    if old == 0 or old == new:
        return []
    if nodes is not None:
        return merkle.consistency_proof_extending(nodes, old, ledger.leaf_slice(old, new))
    return [bytes.fromhex(h) for h in ledger.consistency_proof(old, new)]


class Witnesses:
    def __init__(self, path: Path, witnesses: list[_Witness], retry_seconds: float):
        self.path = Path(path)
        self.witnesses = witnesses
        self.retry_seconds = retry_seconds
        self._retry_at: dict[str, float] = {}

    @classmethod
    def from_config(cls, config, backend) -> Witnesses:
        w = config["witness"]
        found: list[_Witness] = []
        try:
            for spec in w["cosigners"]:
                found.append(_CosignerWitness(Cosigner.parse(spec, w["timeout_seconds"])))
            if w["bucket"]:
                found.append(_BucketWitness(Bucket(backend, w["lock_mode"], w["lock_days"])))
        except ValueError as e:
            raise WitnessRefused(f"config.toml [witness]: {e}") from None
        return cls(config.path("witness"), found, w["retry_seconds"])

    def __bool__(self) -> bool:
        return bool(self.witnesses)

    # ------------------------------------------------------------ the home's copy

    def _file(self, w: _Witness) -> Path:
        return self.path / f"{w.id}.json"

    def record(self, w: _Witness, ledger) -> Record | None:
        """The home's copy of ``w``'s newest evidence, checked; WitnessRefused when altered."""
        f = self._file(w)
        try:
            raw = json.loads(f.read_bytes())
            note = raw["note"].encode("utf-8")
            nodes = [bytes.fromhex(h) for h in raw["nodes"]]
            evidence = raw.get("evidence", {})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise WitnessRefused(f"{f}: unreadable ({e}); move it aside to let the witness tell") from None
        try:
            size, root = w.check_record(note, ledger)
        except CheckpointError as e:
            raise WitnessRefused(
                f"{f}: {e}: the home's copy of the witnessed checkpoint was altered"
            ) from None
        if size and merkle.root_of_nodes(nodes) != root or not size and nodes:
            raise WitnessRefused(f"{f}: its tree nodes do not give the witnessed root")
        return Record(size, root, note, nodes, evidence)

    def _save(self, w: _Witness, record: Record) -> None:
        """Atomically, without fsync: a copy lost in a crash leaves the one before, still true,
        and the witness's 409 tells the size it has."""
        self.path.mkdir(mode=0o700, exist_ok=True)
        f = self._file(w)
        tmp = f.with_name(f.name + ".tmp")
        tmp.write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
        os.replace(tmp, f)

    # ------------------------------------------------------------ checks

    @staticmethod
    def _extends(ledger, record: Record) -> bool:
        """The ledger's signed checkpoint extends the witnessed one (RFC 9162 consistency
        proof from the record's compact nodes and the leaves since)."""
        cp = ledger.checkpoint()
        size = cp.size if cp else 0
        if record.size > size:
            return False
        if record.size == size:
            return record.size == 0 or record.root.hex() == cp.root
        if record.size == 0:
            return True
        proof = merkle.consistency_proof_extending(
            record.nodes, record.size, ledger.leaf_slice(record.size, size)
        )
        return merkle.verify_consistency(record.size, size, proof, record.root, bytes.fromhex(cp.root))

    def check_open(self, ledger, *, remote: bool) -> None:
        """Refuse (WitnessRefused) a ledger older than, or not consistent with, the newest
        checkpoint each witness vouched for: the home's copies always; with ``remote`` (a
        writer opening) the witnesses themselves too, bringing them up to date."""
        for w in self.witnesses:
            record = self.record(w, ledger)
            if record is not None and not self._extends(ledger, record):
                size = ledger.size
                raise WitnessRefused(
                    rolled_back(ledger, str(w), record.size, size)
                    if record.size > size
                    else rewritten(ledger, str(w), record.size, size)
                )
            if remote:
                self._submit(w, ledger, record, opening=True)

    def after_commit(self, ledger) -> None:
        """Send the new checkpoint to every witness (a refusal raises, after the commit)."""
        for w in self.witnesses:
            if time.monotonic() < self._retry_at.get(w.id, 0.0):
                continue
            record = self.record(w, ledger)
            if record is None or record.size < ledger.size:
                self._submit(w, ledger, record, opening=False)

    def _submit(self, w: _Witness, ledger, record: Record | None, *, opening: bool) -> None:
        try:
            new = w.submit(ledger, record, opening=opening)
            if new is not None:
                self._save(w, new)
            self._retry_at.pop(w.id, None)
        except (Unreachable, NotTrusted) as e:
            log.warning("warning: checkpoint %d not witnessed: %s", ledger.size, e)
            self._retry_at[w.id] = time.monotonic() + self.retry_seconds

    def check(self, ledger) -> list[Problem]:
        """verify's part: each home copy's evidence and a consistency proof from it to the
        ledger's checkpoint (from every leaf), then each witness asked; writes nothing."""
        problems: list[Problem] = []
        cp = ledger.checkpoint()
        for w in self.witnesses:
            try:
                record = self.record(w, ledger)
            except WitnessRefused as e:
                problems.append(Problem(str(w), str(e)))
                record = None
            if record is not None:
                problems += self._check_record(w, ledger, cp, record)
            problems += w.consult(ledger, record)
        return problems

    @staticmethod
    def _check_record(w, ledger, cp, record: Record) -> list[Problem]:
        size = cp.size if cp else 0
        if record.size > size:
            return [Problem(str(w), rolled_back(ledger, str(w), record.size, size))]
        if record.size == 0:
            return []
        try:
            proof = [bytes.fromhex(h) for h in ledger.consistency_proof(record.size, size)]
        except Exception:  # the leaves themselves are damaged: Ledger.verify names how
            return []
        if not merkle.verify_consistency(record.size, size, proof, record.root, bytes.fromhex(cp.root)):
            return [Problem(str(w), rewritten(ledger, str(w), record.size, size))]
        return []

    def summary(self, ledger) -> list[str]:
        """Per witness, the size the home's copy says it vouched for (``vaultctl status``)."""
        out = []
        for w in self.witnesses:
            try:
                record = self.record(w, ledger)
                out.append(f"size {record.size if record else 0} by {w}")
            except WitnessRefused as e:
                out.append(f"{w}: {e}")
        return out

    # ------------------------------------------------------------ exports

    def evidence(self, ledger, checkpoint: Checkpoint) -> list[dict]:
        """What an export carries so verify-export can check, offline, that its checkpoint
        extends each witness's newest one: the witnessed checkpoint (a cosigner's with its
        cosignature) and the consistency proof from it."""
        out = []
        for w in self.witnesses:
            record = self.record(w, ledger)
            if record is None or record.size == 0 or record.size > checkpoint.size:
                continue
            proof = _proof(ledger, record.size, checkpoint.size, record.nodes)
            item = {
                "type": "cosignature" if isinstance(w, _CosignerWitness) else "s3-object-lock",
                "witness": str(w),
                "checkpoint": record.note.decode("utf-8"),
                "consistency": {
                    "from": record.size,
                    "to": checkpoint.size,
                    "proof": [h.hex() for h in proof],
                },
                **record.evidence,
            }
            if isinstance(w, _CosignerWitness):
                item["witness_key"] = w.c.vkey
            out.append(item)
        return out
