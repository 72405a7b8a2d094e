"""The ledger: append-only, hash-chained, Merkle-checkpointed history of every change (docs/architecture.md 3).

Layout under the ledger directory:
  segments/<first seq>.jsonl   the current segment: a header, one entry per line without its
                               prev and hash (format 2; format 1 lines carry both: segment.py)
  segments/<first seq>.jsonl.zst  a sealed segment: zstd frames of entry lines, and an index
  blocks, leaves[.<first>]     the tree's leaf hashes: one 32-byte root per aligned block of 256
                               entries that sealed segments hold whole, then one RFC 9162 leaf
                               hash per entry of the rest, the tail (store/leaf_files.py)
  checkpoints/<size>.note      C2SP signed checkpoint for each committed size
  sealed.json                  sealed segments: file, range, and the blob id of the store's copy
                               (null where the store shares the ledger's disk: archive._sealer)
  tree.json                    the tree's compact range after the last commit (a cache, below)
  lock                         the single writer's lock

The signed checkpoint is the commit point. Appends are buffered; ``commit`` makes the
entries and their leaf hashes durable, then signs the new tree. A writer that opens a
ledger after a crash cuts whatever follows the last checkpoint (the caller redoes
uncommitted work); readers simply ignore it.

A writer needs the tree's compact range (the O(log n) roots of its perfect subtrees) to
extend the tree, and the chain's tip. Rebuilding the range hashes the stored block roots
and the tail's leaves (every leaf, 0.26 s at 100k entries, before blocks) and recovery reads the whole current segment (0.2 s for 60 MB), so each commit
also leaves the range in ``tree.json`` with the size, the last entry's hash and the
segment's length. A writer resumes from it, reading only the segment's last line, when it
yields the root the signed checkpoint signs (so it cannot be forged short of a SHA-256
collision), sizes and lengths all agree (no unsigned tail to cut), and that last line is
the entry, whose leaf hash is the last stored one; anything else (missing, stale, damaged)
falls back to the full rebuild and recovery, which write a fresh ``tree.json``. Readers
rebuild nothing at open: the block roots and tail leaf hashes are read, and checked against
the checkpoint, when a proof first needs them.
``verify`` never uses the cache: it re-derives every hash from the segments.

Stored entries are not trusted alone: every read compares an entry's leaf hash with the one
in the tail, or, in a stored block, the root of the block's recomputed leaf hashes with the
block's stored root (verify checks both against the entries and the signed checkpoints).
Proofs take a block's root where the tree's node is the whole block, and recompute a block's
leaves only where a proof needs a node inside it.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import os
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vault.durable import sync_path, write_file
from vault.model import Problem, blob_id, format_time, json_bytes, now, parse_time
from vault.store import merkle
from vault.store import segment as fmt
from vault.store.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_or_create_key,
    sign,
    verifier_key,
    verify_checkpoint_note,
)
from vault.store.leaf_files import BLOCK, BLOCK_HEIGHT, LeafFiles

ZERO = "0" * 64
MEMORY_MAX = 8 << 20  # bytes of the current segment's lines a writer keeps for sealing it
STATE_FILE = "tree.json"


class LedgerError(Exception):
    pass


@dataclass(frozen=True, eq=False)
class Entry:
    seq: int
    time: str
    kind: str
    item: str | None
    actor: str | None
    data: dict
    prev: str
    hash: str

    def fields(self) -> dict:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "item": self.item,
            "actor": self.actor,
            "data": self.data,
            "prev": self.prev,
        }

    def canonical(self) -> bytes:
        # entries are immutable: serialise once (appends, leaf hashes and lines all need it)
        cached = self.__dict__.get("_canonical")
        if cached is None:
            cached = canonical(self.fields())
            object.__setattr__(self, "_canonical", cached)
        return cached

    def to_json(self) -> dict:
        return {**self.fields(), "hash": self.hash}


# one encoder: json.dumps with these options builds a new one per call (a third of its cost)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(fields: dict) -> bytes:
    # json_bytes: a non-UTF-8 file name in an entry is kept as \udcNN escapes (vault/model.py)
    return json_bytes(_CANONICAL.encode(fields))


def chain_hash(prev: str, canon: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + canon).hexdigest()


def decode_line(line: bytes) -> Entry:
    """One segment line -> Entry, with its hash re-derived; LedgerError on anything else."""
    try:
        obj = json.loads(line)
        stored = obj.pop("hash")
        if set(obj) != {"seq", "time", "kind", "item", "actor", "data", "prev"}:
            raise KeyError("unexpected fields")
        if not (
            isinstance(obj["seq"], int)
            and isinstance(obj["prev"], str)
            and len(obj["prev"]) == 64
            and isinstance(obj["data"], dict)
            and isinstance(stored, str)
        ):
            raise TypeError("field types")
        entry = entry_from_fields(obj, obj["prev"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise LedgerError(f"unreadable entry line ({type(e).__name__}: {e})") from None
    if entry.hash != stored:
        raise LedgerError("entry hash does not match its content")
    return entry


def entry_from_fields(fields: dict, prev: str) -> Entry:
    """An entry stored without prev and hash (segment formats v2 and sealed), its hash derived."""
    entry = Entry(
        seq=fields["seq"],
        time=fields["time"],
        kind=fields["kind"],
        item=fields["item"],
        actor=fields["actor"],
        data=fields["data"],
        prev=prev,
        hash="",
    )
    object.__setattr__(entry, "hash", chain_hash(prev, entry.canonical()))
    return entry


def stored_fields(entry: Entry) -> bytes:
    """The entry's canonical bytes without its prev: a v2 line (prev is re-derived on read).
    The top-level prev is the last ``"prev":"`` with real quotes (only seq and time, scalars,
    follow it; a quote inside a string is escaped)."""
    canon = entry.canonical()
    key = b',"prev":"' + entry.prev.encode() + b'"'
    at = canon.rfind(key)
    if at < 0 or canon[at + len(key) : at + len(key) + 7] != b',"seq":':
        raise LedgerError(f"entry {entry.seq}: no top-level prev in its canonical form")
    return canon[:at] + canon[at + len(key) :]


class _CompactRange:
    """Perfect-subtree roots of the tree so far: appending and taking the root are O(log n)."""

    def __init__(self):
        self.stack: list[tuple[int, bytes]] = []
        self.size = 0

    def push(self, leaf: bytes) -> None:
        self.stack.append((0, leaf))
        self.size += 1
        while len(self.stack) > 1 and self.stack[-1][0] == self.stack[-2][0]:
            (h, right), (_, left) = self.stack.pop(), self.stack.pop()
            self.stack.append((h + 1, merkle.node_hash(left, right)))

    def push_node(self, height: int, node: bytes) -> None:
        """Append a complete subtree of 2**height leaves (the range's size a multiple of it)."""
        if self.size % (1 << height):
            raise LedgerError(f"a node of height {height} cannot follow {self.size} leaves")
        self.stack.append((height, node))
        self.size += 1 << height
        while len(self.stack) > 1 and self.stack[-1][0] == self.stack[-2][0]:
            (h, right), (_, left) = self.stack.pop(), self.stack.pop()
            self.stack.append((h + 1, merkle.node_hash(left, right)))

    def root(self) -> bytes:
        if not self.stack:
            return merkle.root([])
        r = self.stack[-1][1]
        for _, h in reversed(self.stack[:-1]):
            r = merkle.node_hash(h, r)
        return r

    @classmethod
    def resume(cls, size: int, hashes: list[bytes]) -> _CompactRange | None:
        """The range of a tree of ``size`` leaves from its subtree roots, biggest first (the
        heights are the bits of ``size``); None when they cannot be that."""
        heights = [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]
        if len(hashes) != len(heights) or any(len(x) != 32 for x in hashes):
            return None
        r = cls()
        r.stack = list(zip(heights, hashes))
        r.size = size
        return r


def _last_line(path: Path) -> tuple[bytes, int]:
    """The file's last line (without its newline) and the file's length; b"" when the file
    is empty or does not end with a newline."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return b"", 0
        f.seek(size - 1)
        if f.read(1) != b"\n":
            return b"", size
        chunk = 4096
        while True:
            start = max(0, size - 1 - chunk)
            f.seek(start)
            tail = f.read(size - 1 - start)
            cut = tail.rfind(b"\n")
            if cut >= 0:
                return tail[cut + 1 :], size
            if start == 0:
                return tail, size
            chunk *= 4


def _listing(directory: Path, suffix: str) -> list[Path]:
    """The directory's files ending in ``suffix``, by name (one checkpoint per commit: sorting
    thousands of Paths costs more than the names)."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(suffix) and not n.startswith("."))
    except FileNotFoundError:
        return []
    return [directory / n for n in names]


def _atomic_write(path: Path, data: bytes) -> None:
    """``path`` replaced whole; its temporary is ``<name>.tmp``, the name recovery sweeps."""
    write_file(path, data, temporary=path.with_name(path.name + ".tmp"))


class Damaged(LedgerError):
    """A segment that cannot be read from ``where`` on (``file line N``, ``file frame N``)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


def _v2_entry(line: bytes, prev: str, where: str) -> Entry:
    """A format 2 line -> Entry; the line must be exactly what the writer writes for it (its
    canonical bytes without prev), so every byte of it counts, a JSON-equivalent one too."""
    try:
        entry = entry_from_fields(fmt.decode_fields(line), prev)
        if stored_fields(entry) != line:
            raise fmt.SegmentError("entry line is not in canonical form")
    except (fmt.SegmentError, LedgerError) as e:
        raise Damaged(where, str(e)) from None
    return entry


def _scan_sealed(data: bytes, name: str, start: int = 0) -> Iterator[tuple[str, Entry]]:
    try:
        index = fmt.decode_index(data, name)
    except fmt.SegmentError as e:
        raise Damaged(name, str(e)) from None
    if index.first != fmt.first_seq(name):
        raise Damaged(name, f"index says it starts at entry {index.first}")
    for number, frame in enumerate(index.frames):
        if frame.first + frame.count <= start:
            continue
        try:
            lines = fmt.frame_lines(data, frame, name, number)
        except fmt.SegmentError as e:
            raise Damaged(f"{name} frame {number + 1}", str(e)) from None
        prev = frame.prev
        for j, line in enumerate(lines):
            where = f"{name} frame {number + 1} entry {j + 1}"
            entry = _v2_entry(line, prev, where)
            prev = entry.hash
            if entry.seq >= start:
                yield where, entry


def _chain_prevs(lines: list[bytes], prev: str) -> list[str]:
    """The prev of each format 2 line from the first's, without parsing any: a line is the
    entry's canonical bytes without prev, whose top-level ``,"seq":`` is its last (only the
    time string follows), so the canonical bytes are spliced back together and hashed. A line
    that is not what was written changes every prev after it, so the entry read (decoded and
    checked in full) fails its leaf check."""
    prevs = []
    for line in lines:
        prevs.append(prev)
        prev = chain_hash(prev, _spliced(line, prev))
    return prevs


def _spliced(line: bytes, prev: str) -> bytes:
    """A format 2 line with its prev put back: the entry's canonical bytes, if the line is
    what the writer wrote (a line that is not fails the check it is used for)."""
    at = line.rfind(b',"seq":')
    return line[:at] + b',"prev":"' + prev.encode() + b'"' + line[at:] if at >= 0 else line


def sealed_entries(data: bytes, name: str = "000000000001.jsonl.zst") -> list[Entry]:
    """Every entry of a sealed segment's bytes (a sealed blob), decoded and chained;
    ``Damaged`` when they cannot be read. ``name`` gives the first seq, as the file's does."""
    return [e for _, e in _scan_sealed(data, name)]


def scan_segment(path: Path, start: int = 0) -> Iterator[tuple[str, Entry]]:
    """(where, entry) for each entry stored in a segment file of any format, in file order,
    from entry ``start`` on (earlier ones of a plain v2 segment are decoded for the chain);
    ``Damaged`` where it cannot be read. FileNotFoundError (before anything is yielded) when
    the file is gone: a writer sealed it meanwhile, and the sealed file holds the entries."""
    data = path.read_bytes()
    name = path.name
    if fmt.is_sealed(path):
        yield from _scan_sealed(data, name, start)
        return
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        head = fmt.parse_header(lines[0]) if lines else None
    except fmt.SegmentError as e:
        raise Damaged(f"{name} line 1", str(e)) from None
    if head is not None and head[0] != fmt.first_seq(name):
        raise Damaged(f"{name} line 1", f"header says the segment starts at entry {head[0]}")
    prev = head[1] if head else ZERO
    for i, line in enumerate(lines[1:] if head else lines, start=2 if head else 1):
        where = f"{name} line {i}"
        if head is None:
            try:
                entry = decode_line(line)
            except LedgerError as e:
                raise Damaged(where, str(e)) from None
        else:
            entry = _v2_entry(line, prev, where)
            prev = entry.hash
        if entry.seq >= start:
            yield where, entry


def _runs(numbered: list[tuple[int, str]]) -> Iterator[tuple[tuple[int, str], int]]:
    """Each run of consecutive numbers in ``numbered`` (sorted): its first pair, and how many
    follow it in the run."""
    i = 0
    while i < len(numbered):
        j = i
        while j + 1 < len(numbered) and numbered[j + 1][0] == numbered[j][0] + 1:
            j += 1
        yield numbered[i], j - i
        i = j + 1


def _leaf_problems(mismatched: list[tuple[int, str]]) -> list[Problem]:
    """One problem per run of consecutive entries whose stored leaf hash differs: an entry
    changed in a segment that stores no prev changes every entry chained after it too."""
    out: list[Problem] = []
    for (_, where), after in _runs(mismatched):
        more = f" (and for the {after} entries after it, chained through it)" if after else ""
        out.append(Problem(where, "stored leaf hash differs from the entry" + more))
    return out


def _block_problems(differ: list[tuple[int, str]]) -> list[Problem]:
    """One problem per run of consecutive blocks whose stored root differs from their entries'."""
    out: list[Problem] = []
    for (k, where), after in _runs(differ):
        more = f" (and of the {after} blocks after it)" if after else ""
        first = k * BLOCK + 1
        out.append(
            Problem(
                where,
                f"stored root of the block of entries {first}..{first + BLOCK - 1} differs from them" + more,
            )
        )
    return out


class Ledger:
    def __init__(
        self,
        path: Path,
        key,
        key_name: str,
        origin: str,
        writable: bool,
        segment_max_bytes: int,
        segment_max_age_hours: float,
        seal: Callable[[bytes], str] | None,
    ):
        self.path = path
        self.key = key
        self.key_name = key_name
        self.origin = origin
        self.writable = writable
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_age = segment_max_age_hours * 3600
        self.seal = seal
        self._lock_fd: int | None = None
        self._recovered: list[str] = []
        self._pending: list[Entry] = []
        self._cache: tuple[Path, list[bytes]] | None = None  # a v1 segment's lines
        self._frame: tuple[str, list[bytes], list[str]] | None = None  # a sealed frame's lines, prevs
        self._sealed_data: tuple[Path, bytes, fmt.SealedIndex] | None = None
        self._written: tuple[Path | None, list[bytes], list[str]] | None = None  # _remember
        self._segment_v2: Path | None = None
        self._listed: tuple[list[int], list[Path]] | None = (
            None  # _segment_for  # the current segment, known to be in format v2
        )
        self.last_prev = ZERO  # the prev of the last committed entry (tree.json, for resuming)
        self._started: tuple[Path, float | None] | None = None  # segment -> its first entry's time
        self._files = LeafFiles(path)  # block roots and the tail's leaf hashes
        self._blocks: dict[int, list[bytes]] = {}  # recent stored blocks' leaf hashes, checked
        self._checked = -1  # the size whose stored tree was last checked against its checkpoint
        self.range: _CompactRange | None = None  # writers only
        self.resumed = False  # a writer took its compact range from tree.json

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        key_path: Path,
        origin: str,
        writable: bool = True,
        segment_max_bytes: int = 256 << 10,
        segment_max_age_hours: float = 24,
        seal: Callable[[bytes], str] | None = None,
    ) -> Ledger:
        path = Path(path)
        if writable:
            (path / "segments").mkdir(parents=True, exist_ok=True)
            (path / "checkpoints").mkdir(exist_ok=True)
        elif not (path / "segments").is_dir():
            raise LedgerError(f"no ledger at {path}")
        try:
            key = load_or_create_key(Path(key_path), origin, create=writable)
        except CheckpointError as e:
            raise LedgerError(str(e)) from None
        ledger = cls(path, key, origin, origin, writable, segment_max_bytes, segment_max_age_hours, seal)
        if writable:
            ledger._lock()
        ledger._load()
        return ledger

    @classmethod
    def from_config(cls, config, *, writable: bool = True, seal=None) -> Ledger:
        c = config["ledger"]
        return cls.open(
            config.path("ledger"),
            key_path=config.path("ledger", "key_path"),
            origin=c["origin"],
            writable=writable,
            segment_max_bytes=c["segment_max_bytes"],
            segment_max_age_hours=c["segment_max_age_hours"],
            seal=seal,
        )

    def _lock(self) -> None:
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LedgerError(f"ledger is locked by another writer (pid {holder})") from None
        # the pid padded to a fixed width, written over the last holder's: truncating the file
        # to 0 first made ext4 flush it on close (auto_da_alloc), up to 0.3 s on a busy disk
        record = str(os.getpid()).encode().ljust(32)
        if os.fstat(fd).st_size != len(record):
            os.ftruncate(fd, len(record))
        os.pwrite(fd, record, 0)
        self._lock_fd = fd

    def _segments(self) -> list[Path]:
        return [self.path / "segments" / n for n in fmt.segment_names(self.path / "segments")]

    def _checkpoint_files(self) -> list[Path]:
        return _listing(self.path / "checkpoints", ".note")

    def _load(self) -> None:
        notes = self._checkpoint_files()
        self._checkpoint = None
        if notes:
            try:
                self._checkpoint = verify_checkpoint_note(notes[-1].read_bytes(), self.verifier_key())
            except CheckpointError as e:
                raise LedgerError(f"{notes[-1]}: {e}") from None
        committed = self._checkpoint.size if self._checkpoint else 0
        files = self._files = LeafFiles(self.path)
        held = files.count()
        if held < committed:
            raise LedgerError(
                f"{files.tail} holds {held} leaf hashes, the checkpoint "
                f"signs {committed}: run 'vaultctl verify'"
            )
        self.size = committed
        self.last_hash = ZERO
        segments = self._segments()
        self.segment: Path | None = segments[-1] if segments else None
        if self.writable:
            self._recovered += files.leftovers()
            if not self._resume(committed, segments, held):
                self._rebuild_range()
                self._recover(held, committed, segments)
                if committed:  # only a writer needs the chain's tip; readers must open damaged ledgers
                    last = self._read_entry(committed)
                    self.last_hash, self.last_prev = last.hash, last.prev
                self._save_state()
        self._sealed = (
            json.loads((self.path / "sealed.json").read_text())
            if (self.path / "sealed.json").exists()
            else []
        )
        if self.writable:
            self._finish_seals()
        if self.segment is not None and (
            fmt.is_sealed(self.segment) or any(s["file"] == self.segment.name for s in self._sealed)
        ):
            self.segment = None  # sealed is final: the next commit starts a new segment
        if self.writable:  # an older ledger's leaves become blocks; an interrupted move is finished
            self._compact_leaves(fmt.first_seq(self.segment.name) - 1 if self.segment else self.size)

    def _finish_seals(self) -> None:
        """Finish what a writer that died while sealing left: a sealed file sealed.json does not
        list is put into the store and listed; the plain file it was made from is removed."""
        directory = self.path / "segments"
        listed = {s["file"] for s in self._sealed}
        names = set(os.listdir(directory))
        for name in sorted(n for n in names if n.endswith(fmt.SEALED_SUFFIX) and not n.startswith(".")):
            seg = directory / name
            if name not in listed:
                last = None
                for _, entry in scan_segment(seg):
                    last = entry.seq
                self._record_seal(seg, last or fmt.first_seq(name))
                self._recovered.append(f"finished sealing {name}")
            plain = name[: -len(fmt.SEALED_SUFFIX)] + fmt.PLAIN_SUFFIX
            if plain in names:
                (directory / plain).unlink()
                self._recovered.append(f"removed {plain}, sealed as {name}")
        for name in names:
            if name.endswith(fmt.SEALED_SUFFIX + ".tmp"):  # a sealed file never renamed into place
                (directory / name).unlink()

    def _stored_range(self, roots: list[bytes] | None = None) -> _CompactRange:
        """The compact range of the committed tree from the stored block roots (or ``roots``)
        and the tail's leaf hashes after them; LedgerError when they are not all there."""
        tree = _CompactRange()
        for root in (self._files.roots() if roots is None else roots)[: self.size // BLOCK]:
            tree.push_node(BLOCK_HEIGHT, root)
        leaves = self._leaves_of(tree.size, self.size)  # a reader behind the writer: from a block
        if len(leaves) != self.size - tree.size:
            raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
        for leaf in leaves:
            tree.push(leaf)
        return tree

    def _rebuild_range(self) -> None:
        """The compact range from the stored hashes, checked against the signed checkpoint."""
        tree = self._stored_range()
        if self._checkpoint and tree.root().hex() != self._checkpoint.root:
            raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
        self.range, self._checked = tree, self.size

    def _check_tree(self) -> None:
        """That the stored block roots and tail leaves give the signed root (once a size)."""
        if self._checked != self.size:
            if self._checkpoint and self._stored_range().root().hex() != self._checkpoint.root:
                raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
            self._checked = self.size

    @property
    def leaves(self) -> list[bytes]:
        """Every committed entry's leaf hash (a stored block's recomputed from its entries),
        checked against the signed checkpoint. Proofs need no such list (``_mth``)."""
        self._check_tree()
        return self.leaf_slice(0, self.size)

    def _tail(self, lo: int, hi: int) -> list[bytes] | None:
        """The tail's leaf hashes of entries lo+1..hi (fewer when it is short), or None when
        entry lo+1 is in a stored block (listing the files again if a writer moved them)."""
        files = self._files
        for _ in range(3):
            if lo < files.tail_start:
                return None
            try:
                return files.tail_leaves(lo, hi)
            except FileNotFoundError:
                files.refresh()
        raise LedgerError("the ledger's leaf hash file keeps disappearing")

    def _leaves_of(self, lo: int, hi: int) -> list[bytes]:
        """The leaf hashes of entries lo+1..hi: the tail's, or a stored block's recomputed from
        its entries and checked against its root (fewer when the tail is short)."""
        out: list[bytes] = []
        while lo < hi:
            tail = self._tail(lo, hi)
            if tail is not None:
                return out + tail
            k = lo // BLOCK
            if k >= self._files.blocks:  # cannot happen: the tail starts at the last block's end
                raise LedgerError(f"no stored leaf hash of entry {lo + 1}: run 'vaultctl verify'")
            end = min(hi, (k + 1) * BLOCK)
            out += self._block(k)[lo - k * BLOCK : end - k * BLOCK]
            lo = end
        return out

    def _block(self, k: int) -> list[bytes]:
        """The leaf hashes of stored block ``k``, recomputed from its segments' lines (spliced
        and hashed, not parsed) and checked against the block's stored root."""
        got = self._blocks.get(k)
        if got is None:
            first, got = k * BLOCK + 1, []
            while len(got) < BLOCK:
                got += self._stored_leaves(first + len(got), first + BLOCK - 1)
            self._check_block(k, got)
        return got

    def _check_block(self, k: int, leaves: list[bytes]) -> None:
        if merkle.root(leaves) != self._files.root(k):
            first = k * BLOCK + 1
            raise LedgerError(
                f"entries {first}..{first + BLOCK - 1} do not match their stored block root: run 'vaultctl verify'"
            )
        if len(self._blocks) >= 64:
            self._blocks.pop(next(iter(self._blocks)))
        self._blocks[k] = leaves

    def _mth(self, lo: int, hi: int) -> bytes:
        """The Merkle root of leaves lo..hi-1: the tail's leaf hashes, the stored roots of the
        whole blocks it spans (an aligned run of whole blocks: its root is theirs), or a
        block's leaves recomputed; else split as RFC 9162 defines it."""
        if hi - lo <= 1 or lo >= self._files.tail_start:
            leaves = self._leaves_of(lo, hi)
            if len(leaves) != hi - lo:
                raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
            return merkle.root(leaves)
        if lo % BLOCK == 0 and hi % BLOCK == 0 and hi <= self._files.blocks * BLOCK:
            return merkle.root(self._files.roots()[lo // BLOCK : hi // BLOCK])
        if lo // BLOCK == (hi - 1) // BLOCK:
            return merkle.root(self._leaves_of(lo, hi))
        k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two below hi - lo
        return merkle.node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))

    def _compact_leaves(self, sealed_upto: int) -> None:
        """Keep a root, not 256 leaf hashes, for each aligned block that the segments sealed up
        to entry ``sealed_upto`` hold whole (store/leaf_files.py); the last committed entry's
        leaf hash stays in the tail (a resuming writer reads it). The new roots must give the
        signed root with the rest of the tail, or nothing changes (verify names what differs).
        Moving them is optional: one a crash or a full disk interrupts, the next writer finishes."""
        files = self._files
        target = min((self.size - 1) // BLOCK, sealed_upto // BLOCK) if self.size else 0
        if target <= files.blocks and files.tail_start >= files.blocks * BLOCK:
            return
        try:
            roots = []
            if target > files.blocks:
                leaves = self._tail(files.blocks * BLOCK, target * BLOCK)
                if leaves is None or len(leaves) != (target - files.blocks) * BLOCK:
                    return
                roots = [merkle.root(leaves[i : i + BLOCK]) for i in range(0, len(leaves), BLOCK)]
            if self._checkpoint is None or (
                self._stored_range(files.roots() + roots).root().hex() != self._checkpoint.root
            ):
                return
            files.compact(roots, self.size)
        except (OSError, LedgerError):
            files.refresh()  # what was done holds; the rest waits for the next writer

    def _resume(self, committed: int, segments: list[Path], held: int) -> bool:
        """Take the compact range and the chain's tip from tree.json when every check holds
        (see the module's docstring); False leaves everything to the full rebuild."""
        if not committed or self._checkpoint is None or not segments:
            return False
        try:
            state = json.loads((self.path / STATE_FILE).read_bytes())
            hashes = [bytes.fromhex(h) for h in state["range"]]
            size, last, segment, length = state["size"], state["last"], state["segment"], state["length"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        if size != committed or held != committed or segments[-1].name != segment:
            return False
        tree = _CompactRange.resume(size, hashes)
        if tree is None or tree.root().hex() != self._checkpoint.root:
            return False
        try:
            entry, seg_bytes = self._last_entry(segments[-1], state.get("prev"))
            last_leaf = self._tail(committed - 1, committed)
        except (OSError, LedgerError, fmt.SegmentError, KeyError, TypeError):
            return False
        if (
            seg_bytes != length
            or entry.seq != committed
            or entry.hash != last
            or [merkle.leaf_hash(entry.canonical())] != last_leaf
        ):
            return False
        self.range = tree
        self.last_hash, self.last_prev = entry.hash, entry.prev
        self.resumed = True
        return True

    @staticmethod
    def _last_entry(seg: Path, prev: str | None) -> tuple[Entry, int]:
        """A segment's last entry and the file's length, reading as little as its format lets:
        a plain v2 segment's last line takes ``prev`` (tree.json's) for the prev it does not store."""
        if fmt.is_sealed(seg):
            data = seg.read_bytes()
            index = fmt.decode_index(data, seg.name)
            frame = index.frames[-1]
            lines = fmt.frame_lines(data, frame, seg.name, len(index.frames) - 1)
            entry = None
            chain = frame.prev
            for line in lines:
                entry = entry_from_fields(fmt.decode_fields(line), chain)
                chain = entry.hash
            if entry is None:
                raise LedgerError("empty frame")
            return entry, len(data)
        with open(seg, "rb") as f:
            v1 = not fmt.has_header(f.read(len(fmt.HEADER_PREFIX)))
        line, size = _last_line(seg)
        if v1:
            return decode_line(line), size
        if not isinstance(prev, str) or len(prev) != 64:
            raise LedgerError("no prev to resume from")
        return entry_from_fields(fmt.decode_fields(line), prev), size

    def _writer_range(self) -> _CompactRange:
        """The compact range a writable ledger builds (or resumes) when it opens."""
        if self.range is None:
            raise LedgerError("ledger opened read-only")
        return self.range

    def _save_state(self, segment: Path | None = None) -> None:
        """tree.json for the next writer (``segment``: the one the last entry is in). A cache
        checked on every use: no fsync, and a failure to write it costs only a rebuild."""
        segment = segment or self.segment
        if not self.size or segment is None:
            return
        tree = self._writer_range()
        try:
            state = {
                "size": self.size,
                "last": self.last_hash,
                "prev": self.last_prev,
                "segment": segment.name,
                "length": segment.stat().st_size,
                "range": [h.hex() for _, h in tree.stack],
            }
            tmp = self.path / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.path / STATE_FILE)
        except OSError:
            pass

    def _recover(self, held: int, committed: int, segments: list[Path]) -> None:
        """Cut everything after the last signed checkpoint."""
        if held > committed:
            dropped = self._files.truncate(committed)
            self._recovered.append(f"dropped {dropped} unsigned leaf hashes")
        for seg in segments:
            first = fmt.first_seq(seg.name)
            if first > committed:
                seg.unlink()
                self._recovered.append(f"removed unsigned segment {seg.name}")
                continue
            if fmt.is_sealed(seg):
                continue  # sealed only once committed: nothing of it to cut
            data = seg.read_bytes()
            lines = data.split(b"\n")
            keep = committed - first + 1 + (1 if lines and fmt.has_header(lines[0]) else 0)
            cut = sum(len(line) + 1 for line in lines[:keep])
            if cut < len(data):
                with open(seg, "r+b") as f:
                    f.truncate(cut)
                    os.fsync(f.fileno())
                self._recovered.append(f"cut {seg.name} after entry {committed}")
        segments = self._segments()
        self.segment = segments[-1] if segments else None

    def recovered(self) -> list[str]:
        return list(self._recovered)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------ reading

    def _segment_for(self, seq: int) -> Path:
        """The segment that holds entry ``seq``. The listing is kept: every segment but the
        last is final (sealed), so only a seq in or past the last one lists again."""
        cached = self._listed
        if cached is None or not cached[0] or seq >= cached[0][-1]:
            segments = self._segments()
            cached = self._listed = ([fmt.first_seq(s.name) for s in segments], segments)
        i = bisect.bisect_right(cached[0], seq) - 1
        if i < 0:
            raise LedgerError(f"no segment holds entry {seq}")
        return cached[1][i]

    def _lines(self, seg: Path) -> list[bytes]:
        if self._cache is None or self._cache[0] != seg or seg == self.segment:
            self._cache = (seg, seg.read_bytes().split(b"\n"))
        return self._cache[1]

    def _sealed_file(self, seg: Path) -> tuple[bytes, fmt.SealedIndex]:
        if self._sealed_data is None or self._sealed_data[0] != seg:
            data = seg.read_bytes()
            try:
                index = fmt.decode_index(data, seg.name)
            except fmt.SegmentError as e:
                raise Damaged(seg.name, str(e)) from None
            self._sealed_data = (seg, data, index)
        return self._sealed_data[1], self._sealed_data[2]

    def _sealed_frame(self, seg: Path, seq: int) -> tuple[fmt.Frame, int, list[bytes], list[str]]:
        """The frame of a sealed segment that holds entry ``seq``: it, its number, its lines and
        their prevs (the last one decoded is kept)."""
        data, index = self._sealed_file(seg)
        number = index.frame_for(seq)
        frame = index.frames[number]
        key = f"{seg.name}#{number}"
        if self._frame is None or self._frame[0] != key:
            try:
                lines = fmt.frame_lines(data, frame, seg.name, number)
            except fmt.SegmentError as e:
                raise Damaged(f"{seg.name} frame {number + 1}", str(e)) from None
            self._frame = (key, lines, _chain_prevs(lines, frame.prev))
        _, lines, prevs = self._frame
        return frame, number, lines, prevs

    def _stored_leaves(self, seq: int, last: int) -> list[bytes]:
        """The leaf hashes of entries seq..last as one segment (one frame of it) stores them,
        at least one: a line's canonical bytes are spliced back together and hashed."""
        for _ in range(3):
            seg = self._segment_for(seq)
            try:
                if fmt.is_sealed(seg):
                    frame, _, lines, prevs = self._sealed_frame(seg, seq)
                    lo, hi = seq - frame.first, min(frame.count, last - frame.first + 1)
                    out = [merkle.leaf_hash(_spliced(lines[j], prevs[j])) for j in range(lo, hi)]
                else:
                    lines = self._lines(seg)
                    first = fmt.first_seq(seg.name)
                    if lines and fmt.has_header(lines[0]):  # never past last (a line may be being written)
                        head = fmt.parse_header(lines[0])
                        assert head is not None
                        kept = lines[1 : last - first + 2]
                        prevs = _chain_prevs(kept, head[1])
                        out = [
                            merkle.leaf_hash(_spliced(kept[j], prevs[j]))
                            for j in range(seq - first, len(kept))
                        ]
                    else:  # format 1: the hash is stored in the line, so it is decoded
                        kept = [x for x in lines[seq - first : last - first + 1] if x]
                        out = [merkle.leaf_hash(decode_line(x).canonical()) for x in kept]
                break
            except FileNotFoundError:
                self._listed = None  # a writer sealed it between the listing and the read
            except fmt.SegmentError as e:
                raise LedgerError(f"{seg.name}: {e}") from None
        else:
            raise LedgerError(f"entry {seq}: its segment keeps disappearing")
        if not out:
            raise LedgerError(f"entry {seq} missing from {seg.name}")
        return out

    def _entry_in(self, seg: Path, seq: int) -> Entry:
        """Entry ``seq`` from the segment that holds it (FileNotFoundError: sealed meanwhile)."""
        first = fmt.first_seq(seg.name)
        if fmt.is_sealed(seg):
            frame, number, lines, prevs = self._sealed_frame(seg, seq)
            i, where = seq - frame.first, f"{seg.name} frame {number + 1} entry {seq - frame.first + 1}"
        else:
            lines = self._lines(seg)
            if not (lines and fmt.has_header(lines[0])):  # format 1: a line is an entry
                index_ = seq - first
                if index_ >= len(lines) or not lines[index_]:
                    raise LedgerError(f"entry {seq} missing from {seg.name}")
                entry = decode_line(lines[index_])
                if entry.seq != seq:
                    raise LedgerError(f"entry {seq}: {seg.name} line {index_ + 1} holds entry {entry.seq}")
                return entry
            try:
                head = fmt.parse_header(lines[0])
            except fmt.SegmentError as e:
                raise Damaged(f"{seg.name} line 1", str(e)) from None
            assert head is not None
            # never past entry seq: a writer may be writing the line after the last committed
            lines = lines[1 : seq - first + 2]
            prevs = _chain_prevs(lines, head[1])
            i, where = seq - first, f"{seg.name} line {seq - first + 2}"
        if not 0 <= i < len(lines) or not lines[i]:
            raise LedgerError(f"entry {seq} missing from {seg.name}")
        entry = _v2_entry(lines[i], prevs[i], where)
        if entry.seq != seq:
            raise LedgerError(f"entry {seq}: {where} holds entry {entry.seq}")
        return entry

    def _read_entry(self, seq: int) -> Entry:
        entry = self._read_stored(seq)
        self._check_leaf(entry, self._leaves_of(seq - 1, seq), seq - 1)
        return entry

    def _read_stored(self, seq: int) -> Entry:
        """Entry ``seq`` as its segment stores it, not yet checked against a leaf hash."""
        for _ in range(3):
            seg = self._segment_for(seq)
            try:
                entry = self._entry_in(seg, seq)
                break
            except FileNotFoundError:
                self._listed = None  # a writer sealed it between the listing and the read
                continue
        else:
            raise LedgerError(f"entry {seq}: its segment keeps disappearing")
        return entry

    def _check_leaf(self, entry: Entry, leaves: list[bytes], offset: int = 0) -> None:
        """Nothing stored in a segment is trusted alone: the entry must be the one whose leaf
        hash is stored (and verify checks the stored leaves against the signed checkpoints)."""
        i = entry.seq - 1 - offset
        if not 0 <= i < len(leaves) or merkle.leaf_hash(entry.canonical()) != leaves[i]:
            raise LedgerError(f"entry {entry.seq} does not match its stored leaf hash: run 'vaultctl verify'")

    def get(self, seq: int) -> Entry:
        if not 1 <= seq <= self.size:
            raise LedgerError(f"no committed entry {seq} (ledger size {self.size})")
        return self._read_entry(seq)

    def entries(self, start: int = 1, end: int | None = None) -> Iterator[Entry]:
        end = self.size if end is None else min(end, self.size)
        seq = max(start, 1)
        blocked = self._files.tail_start  # entries before it are in stored blocks
        if seq <= end and seq - 1 < blocked:  # each block read whole and checked before it is yielded
            lo = (seq - 1) // BLOCK * BLOCK
            hi = min(blocked, -(-end // BLOCK) * BLOCK)
            held: list[Entry] = []
            for entry in self._scan(lo + 1, hi):
                held.append(entry)
                if len(held) == BLOCK:
                    self._check_block(
                        (held[0].seq - 1) // BLOCK, [merkle.leaf_hash(e.canonical()) for e in held]
                    )
                    yield from (e for e in held if seq <= e.seq <= end)
                    held = []
            seq = max(seq, hi + 1)
        block = 4096  # leaf hashes read at a time
        leaves: list[bytes] = []
        leaves_from = seq - 1
        for entry in self._scan(seq, end):
            if not leaves_from <= entry.seq - 1 < leaves_from + len(leaves):
                leaves_from = entry.seq - 1
                leaves = self._leaves_of(leaves_from, min(end, leaves_from + block))
            self._check_leaf(entry, leaves, leaves_from)
            yield entry

    def _scan(self, seq: int, end: int) -> Iterator[Entry]:
        """Entries seq..end as the segments store them, in order, not yet checked."""
        missing = 0
        while seq <= end:
            seg = self._segment_for(seq)
            before = seq
            try:
                for where, entry in scan_segment(seg, seq):
                    if entry.seq != seq:
                        raise LedgerError(f"entry {seq}: {where} holds entry {entry.seq}")
                    yield entry
                    seq += 1
                    if seq > end:
                        return
            except FileNotFoundError:
                self._listed = None  # sealed meanwhile: list again (the sealed file holds them)
                missing += 1
                if missing < 3:
                    continue
                raise LedgerError(f"entry {seq}: its segment keeps disappearing") from None
            if seq == before:
                raise LedgerError(f"entry {seq} missing from {seg.name}")

    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    def sealed_blobs(self) -> list[str]:
        """Blob ids of the segments sealed into the store."""
        return [s["blob"] for s in self._sealed if s.get("blob")]

    def verifier_key(self) -> str:
        return verifier_key(self.key_name, self.key.public_key())

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> list[str]:
        size = self.size if tree_size is None else tree_size
        if not 1 <= seq <= size <= self.size:
            raise ValueError(f"leaf {seq - 1} is not in a tree of size {size}")
        self._check_tree()
        return [h.hex() for h in merkle.inclusion_proof_from(self._mth, seq - 1, size)]

    def leaf_slice(self, start: int, end: int) -> list[bytes]:
        """The stored leaf hashes of entries start+1..end, as stored (not checked here: a
        proof built from them is checked against the signed root by whoever verifies it)."""
        if not 0 <= start <= end <= self.size:
            raise LedgerError(f"no leaves {start}..{end} in a ledger of {self.size}")
        leaves = self._leaves_of(start, end)
        if len(leaves) != end - start:
            raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
        return leaves

    def compact_nodes(self) -> list[bytes]:
        """The roots of the perfect subtrees of the committed tree, biggest first (a writer
        holds them; a reader computes them from the stored hashes)."""
        if self.range is not None and self.range.size == self.size:
            return [h for _, h in self.range.stack]
        self._check_tree()
        return [h for _, h in self._stored_range().stack]

    def roots_at(self, sizes) -> dict[int, bytes]:
        """The Merkle root of the first s entries for each committed size s, in one pass."""
        want = sorted({s for s in sizes if 0 <= s <= self.size})
        out: dict[int, bytes] = {}
        tree, files = _CompactRange(), self._files
        if want and want[-1]:
            self._check_tree()
        for s in want:
            while tree.size < s:
                i = tree.size
                k = i // BLOCK
                if i % BLOCK == 0 and i + BLOCK <= s and k < files.blocks:
                    tree.push_node(BLOCK_HEIGHT, files.root(k))
                    continue
                stop = min(s, (k + 1) * BLOCK)
                leaves = self._leaves_of(i, stop)
                if len(leaves) != stop - i:
                    raise LedgerError("leaf hashes do not match the signed checkpoint: run 'vaultctl verify'")
                for leaf in leaves:
                    tree.push(leaf)
            out[s] = tree.root()
        return out

    def consistency_proof(self, old_size: int, new_size: int) -> list[str]:
        if not 0 < old_size <= new_size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {new_size}")
        self._check_tree()
        return [h.hex() for h in merkle.consistency_proof_from(self._mth, old_size, new_size)]

    # ------------------------------------------------------------ writing

    def append(
        self,
        kind: str,
        *,
        item: str | None = None,
        data: dict | None = None,
        actor: str | None = None,
        time: str | None = None,
    ) -> Entry:
        if not self.writable:
            raise LedgerError("ledger opened read-only")
        seq = self.size + len(self._pending) + 1
        prev = self._pending[-1].hash if self._pending else self.last_hash
        entry = Entry(seq, time or format_time(now()), kind, item, actor, data or {}, prev, "")
        canon = entry.canonical()
        object.__setattr__(entry, "hash", chain_hash(prev, canon))
        self._pending.append(entry)
        return entry

    def commit(self) -> Checkpoint | None:
        if not self._pending:
            return None
        tree = self._writer_range()
        if self.segment is not None and not self._appendable(self.segment):
            self._seal_segment(self.segment)  # an older format's segment is sealed, never appended to
            self.segment = None
        head = b""
        if self.segment is None:
            first = self._pending[0].seq
            self.segment = self.path / "segments" / f"{first:012d}{fmt.PLAIN_SUFFIX}"
            head = fmt.header_line(first, self._pending[0].prev)
            self._segment_v2 = self.segment
        # a line is the entry's canonical form without prev; readers re-derive prev along the
        # chain from the header, and the hash (segment.py)
        stored = [stored_fields(e) + b"\n" for e in self._pending]
        lines = head + b"".join(stored)
        size = self.size + len(self._pending)
        note = self.path / "checkpoints" / f"{size:012d}.note"
        try:
            new_segment = not self.segment.exists()
            with open(self.segment, "ab") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            new_leaves = [merkle.leaf_hash(e.canonical()) for e in self._pending]
            self._files.append(new_leaves)
            # a file's fsync covers its length; only a new file's name needs its directory's
            if new_segment:
                sync_path(self.path / "segments")
            for leaf in new_leaves:
                tree.push(leaf)
            checkpoint = sign(self.origin, size, tree.root(), self.key, self.key_name)
            _atomic_write(note, checkpoint.note)
        except BaseException:
            if not note.exists():  # not committed: nothing of it stays (a full disk is no crash)
                self._cut_unsigned(note)
            raise
        self.size = self._checked = size
        self.last_hash, self.last_prev = self._pending[-1].hash, self._pending[-1].prev
        self._remember(head != b"", stored)
        self._pending = []
        self._checkpoint = checkpoint
        self._cache = None
        segment = self.segment
        self._save_state(self._maybe_seal() or segment)
        return checkpoint

    def _remember(self, new_segment: bool, stored: list[bytes]) -> None:
        """Keep the current segment's lines and prevs in memory (up to ``MEMORY_MAX`` bytes), so
        sealing it need not read and re-derive them: this writer wrote and hashed them."""
        if new_segment:
            self._written = (self.segment, [], [])
        if self._written is None or self._written[0] != self.segment:
            self._written = None
            return
        _, lines, prevs = self._written
        lines.extend(stored)
        prevs.extend(e.prev for e in self._pending)
        if sum(map(len, lines)) > MEMORY_MAX:
            self._written = None  # a big segment is read back when it is sealed

    def _appendable(self, seg: Path) -> bool:
        """A plain segment in the current format (v2, a header line), which commits extend."""
        if self._segment_v2 == seg:
            return True
        if fmt.is_sealed(seg) or not seg.exists():
            return False
        with open(seg, "rb") as f:
            ok = fmt.has_header(f.readline())
        if ok:
            self._segment_v2 = seg
        return ok

    def _cut_unsigned(self, note: Path) -> None:
        """Undo a commit that failed before its checkpoint (ENOSPC): cut what it wrote, as the
        next writer's recovery would, so readers and verify see the ledger as it was. Cutting
        frees space, so it works on a full disk; if it fails anyway, recovery does it later."""
        try:
            self._recover(self._files.count(), self.size, self._segments())
            note.with_name(note.name + ".tmp").unlink(missing_ok=True)
            self._rebuild_range()
        except (OSError, LedgerError):
            pass

    def _segment_started(self, seg: Path) -> float | None:
        """When the segment's first entry was made (epoch seconds), None if unreadable.
        The file's own times are no use: every append refreshes them."""
        if self._started is None or self._started[0] != seg:
            try:
                with open(seg, "rb") as f:
                    first = json.loads(f.readline())
                    if fmt.HEADER_KEY in first:
                        first = json.loads(f.readline())
                started = parse_time(first["time"]).timestamp()
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                started = None  # verify names a damaged line; sealing then waits for the size limit
            self._started = (seg, started)
        return self._started[1]

    def _maybe_seal(self) -> Path | None:
        """Seal the current segment when it is big or old enough; the sealed file, or None."""
        seg = self.segment
        if seg is None or not seg.exists():
            return None
        started = self._segment_started(seg)
        old = started is not None and _time.time() - started >= self.segment_max_age
        if seg.stat().st_size < self.segment_max_bytes and not old:
            return None
        sealed = self._seal_segment(seg)
        self.segment = None  # the next commit starts a new segment
        return sealed

    def _seal_segment(self, seg: Path) -> Path:
        """Compress a plain segment (every entry of it committed) into a sealed one, put that
        into the blob store, list it in sealed.json and remove the plain file. Order: the
        sealed file is durable before the plain one goes; a crash in between leaves both
        (readers take the sealed one) or an unlisted sealed file (``_finish_seals``)."""
        first = fmt.first_seq(seg.name)
        if self._written is not None and self._written[0] == seg:
            _, lines, prevs = self._written  # this writer wrote them all (and hashed them)
        else:
            entries = [e for _, e in scan_segment(seg)]
            leaves = self._leaves_of(first - 1, first - 1 + len(entries))
            for entry in entries:  # what is sealed is what the checkpoints sign
                self._check_leaf(entry, leaves, first - 1)
            lines, prevs = [stored_fields(e) + b"\n" for e in entries], [e.prev for e in entries]
        last = first + len(lines) - 1
        if not lines or last != self.size:
            raise LedgerError(f"{seg.name}: cannot seal entries {first}..{last} of {self.size}")
        data = fmt.encode_sealed(first, lines, prevs)
        target = seg.with_name(f"{first:012d}{fmt.SEALED_SUFFIX}")
        back = [line + b"\n" for _, _, frame in fmt.iter_sealed(data, target.name) for line in frame]
        if back != lines:  # cannot happen: a codec bug must not lose history
            raise LedgerError(f"{seg.name}: the sealed form does not read back the same entries")
        _atomic_write(target, data)
        self._record_seal(target, last, data)
        self._written = None
        if seg != target:
            seg.unlink()
        self._cache = self._frame = None
        self._compact_leaves(last)
        return target

    def _record_seal(self, sealed: Path, last: int, data: bytes | None = None) -> None:
        blob = self.seal(sealed.read_bytes() if data is None else data) if self.seal else None
        self._sealed.append(
            {"file": sealed.name, "first": fmt.first_seq(sealed.name), "last": last, "blob": blob}
        )
        _atomic_write(self.path / "sealed.json", json.dumps(self._sealed, indent=1).encode())

    # ------------------------------------------------------------ verification

    def verify(self, progress=None, blob_exists: Callable[[str], bool] | None = None) -> list[Problem]:
        """Full read-only check: every line, the chain, leaf hashes, every checkpoint."""
        advance = progress or (lambda n=1, **kw: None)
        problems: list[Problem] = []
        recomputed: list[bytes] = []
        prev = ZERO
        expected = 1
        broken = False
        files = LeafFiles(self.path)
        for _ in range(3):
            try:
                stored_leaves = files.tail.read_bytes() if files.tail.exists() else b""
                roots = files.roots()
                break
            except FileNotFoundError:  # a writer moved leaves into blocks meanwhile
                files.refresh()
            except OSError as e:
                return [Problem(f"{self.path}", f"the leaf hashes cannot be read: {e}")]
        else:
            return [Problem(f"{self.path}", "the leaf hash files keep disappearing")]
        mismatched: list[tuple[int, str]] = []  # (seq, where) of entries whose stored leaf differs
        blocks_differ: list[tuple[int, str]] = []  # (block, where its first entry is) likewise
        block_where = ""
        segments = self._segments()
        gone = 0
        while segments and not broken:
            seg = segments.pop(0)
            first = fmt.first_seq(seg.name)
            if first != expected:
                problems.append(
                    Problem(
                        f"ledger entry {expected}", f"segment {seg.name} starts at {first}: entries missing"
                    )
                )
                broken = True
                break
            try:
                for place, entry in scan_segment(seg):
                    where = f"ledger entry {expected} ({place})"
                    if entry.seq != expected:
                        problems.append(
                            Problem(
                                where,
                                f"found entry {entry.seq} where {expected} belongs: entries deleted, swapped or inserted",
                            )
                        )
                        broken = True
                        break
                    if entry.prev != prev:
                        problems.append(Problem(where, "does not chain to the entry before it"))
                        broken = True
                        break
                    leaf = merkle.leaf_hash(entry.canonical())
                    i = expected - 1
                    at = (i - files.tail_start) * 32
                    if i >= files.tail_start and stored_leaves[at : at + 32] != leaf:
                        mismatched.append((expected, where))
                    recomputed.append(leaf)
                    if i % BLOCK == 0:
                        block_where = where
                    k = i // BLOCK
                    if (
                        i % BLOCK == BLOCK - 1
                        and k < len(roots)
                        and merkle.root(recomputed[-BLOCK:]) != roots[k]
                    ):
                        blocks_differ.append((k, block_where))
                    prev = entry.hash
                    expected += 1
                    advance(1)
            except Damaged as e:
                problems.append(Problem(f"ledger entry {expected} ({e.where})", e.message))
                broken = True
            except FileNotFoundError:  # a writer sealed it meanwhile: read the sealed file
                gone += 1
                if expected != first or gone > 3:
                    problems.append(Problem(f"ledger segment {seg.name}", "disappeared while being read"))
                    broken = True
                    break
                segments = [s for s in self._segments() if fmt.first_seq(s.name) >= first]
        problems += _leaf_problems(mismatched) + _block_problems(blocks_differ)
        present = len(recomputed)
        notes = self._checkpoint_files()
        if not notes and present:
            problems.append(Problem("ledger", f"{present} entries but no signed checkpoint"))
        latest = 0
        for note in notes:
            try:
                cp = verify_checkpoint_note(note.read_bytes(), self.verifier_key())
            except CheckpointError as e:
                problems.append(Problem(f"checkpoint {note.name}", str(e)))
                continue
            if note.stem.lstrip("0") != str(cp.size) and cp.size != 0:
                problems.append(
                    Problem(f"checkpoint {note.name}", f"file name does not match its size {cp.size}")
                )
            latest = max(latest, cp.size)
            if cp.size > present:
                if not broken:
                    problems.append(
                        Problem(
                            f"checkpoint {note.name}",
                            f"truncated: checkpoint signs {cp.size} entries, only {present} present",
                        )
                    )
                continue
            if merkle.root(recomputed[: cp.size]).hex() != cp.root:
                problems.append(
                    Problem(
                        f"checkpoint {note.name}",
                        f"Merkle root of the first {cp.size} entries differs from the signed root",
                    )
                )
        if not broken and present > latest:
            problems.append(
                Problem(
                    f"ledger entry {latest + 1}",
                    f"{present - latest} entries after the last signed checkpoint are not signed",
                )
            )
        if not broken and len(stored_leaves) != (present - files.tail_start) * 32:
            problems.append(
                Problem(
                    f"{files.tail}",
                    f"holds {len(stored_leaves) // 32} leaf hashes for the {present - files.tail_start} "
                    f"entries from {files.tail_start + 1} on",
                )
            )
        if not broken and len(roots) * BLOCK > present:
            problems.append(
                Problem(
                    f"{self.path / 'blocks'}",
                    f"holds {len(roots)} block roots, of {len(roots) * BLOCK} entries: only {present} present",
                )
            )
        for s in self._sealed:  # the store's copy is the file, byte for byte
            local = self.path / "segments" / str(s.get("file"))
            try:
                same = not s.get("blob") or blob_id(local.read_bytes()) == s["blob"]
            except OSError:
                continue  # a missing segment is reported above, by the entries it lacks
            if not same:
                problems.append(
                    Problem(
                        f"sealed segment {s['file']}", f"differs from its copy in the store, blob {s['blob']}"
                    )
                )
        if blob_exists is not None:
            for s in self._sealed:
                if s.get("blob") and not blob_exists(s["blob"]):
                    problems.append(
                        Problem(f"sealed segment {s['file']}", f"blob {s['blob']} missing from the store")
                    )
        return problems
