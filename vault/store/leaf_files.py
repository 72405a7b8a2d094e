"""Where a ledger keeps its Merkle leaf hashes: block roots for the sealed past, leaves for the tail.

The ledger's tree (RFC 9162, store/merkle.py) has one leaf hash per entry. An aligned block
of ``BLOCK`` (256) entries, entries ``256k+1 .. 256k+256``, is a complete subtree, so a node
of the tree: once every entry of it is in a sealed (immutable) segment, its 256 leaf hashes
are replaced by that node's hash, and recomputed from the entries when a proof or a read
needs them (the ledger checks them against the stored root). Files under the ledger directory:

  blocks               32 bytes a block: the roots of blocks 0, 1, ..., B-1, appended in order
  leaves.<first>       32 bytes an entry: the leaf hashes of entries first+1, first+2, ... (the
                       tail), ``first`` (12 digits) a multiple of 256 and at most 256 * B
  leaves               the same with first = 0: ledgers before blocks, and new ones until
                       their first block

The tail file in use is the one with the largest ``first`` at most 256 * B. Moving blocks
out of the tail (``compact``) appends their roots to ``blocks`` (fsync) first, then writes
the shorter tail under its new name (tmp, fsync, rename, fsync the directory), then removes
the old one: a crash at any point leaves a block file and a tail that together hold every
leaf (where both cover an entry, they agree), and the next writer finishes (``compact``
again, ``leftovers``). A reader that finds its tail file gone lists the files again.
"""

from __future__ import annotations

import os
from pathlib import Path

from vault import faults
from vault.durable import sync_path, write_file

BLOCK = 256  # entries in a block: a complete aligned block is a node of height 8
BLOCK_HEIGHT = 8
BLOCKS_FILE = "blocks"
TAIL = "leaves"
# named crash points (vault/faults.py) of a move of leaves into blocks, in order
MOVING, ROOTS_WRITTEN, TAIL_WRITTEN = "leaves.moving", "leaves.roots-written", "leaves.tail-written"


def _tails(directory: Path) -> dict[int, Path]:
    """Tail files by their first entry (0 for ``leaves``); names that are no tail are skipped."""
    out: dict[int, Path] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return out
    for n in names:
        if n == TAIL:
            out[0] = directory / n
        elif n.startswith(TAIL + ".") and n[len(TAIL) + 1 :].isdigit() and len(n) == len(TAIL) + 13:
            out[int(n[len(TAIL) + 1 :])] = directory / n
    return out


class LeafFiles:
    """The block roots and the tail of one ledger directory, as listed when last refreshed."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._roots: list[bytes] = []
        self.refresh()

    def refresh(self) -> None:
        """List the files again (a writer may have moved blocks out of the tail meanwhile)."""
        try:
            size = (self.directory / BLOCKS_FILE).stat().st_size
        except FileNotFoundError:
            size = 0
        self.blocks = size // 32  # a torn last append holds no whole root: not counted
        if len(self._roots) > self.blocks:
            self._roots = []
        tails = _tails(self.directory)
        usable = [f for f in tails if f <= self.blocks * BLOCK and f % BLOCK == 0]
        self.tail_start = max(usable) if usable else 0
        self.tail = tails.get(self.tail_start, self.directory / TAIL)

    def tail_length(self) -> int:
        """Leaf hashes in the tail file (0 when there is none yet)."""
        try:
            return self.tail.stat().st_size // 32
        except FileNotFoundError:
            return 0

    def count(self) -> int:
        """Entries whose leaf hash is held (in a block or in the tail)."""
        return max(self.tail_start + self.tail_length(), self.blocks * BLOCK)

    def root(self, k: int) -> bytes:
        """The stored root of block ``k`` (< ``blocks``)."""
        return self.roots()[k]

    def roots(self) -> list[bytes]:
        """Every stored block root (blocks only grow: what was read stays true)."""
        if len(self._roots) < self.blocks:
            with open(self.directory / BLOCKS_FILE, "rb") as f:
                f.seek(len(self._roots) * 32)
                raw = f.read((self.blocks - len(self._roots)) * 32)
            self._roots += [raw[i : i + 32] for i in range(0, len(raw) - 31, 32)]
        return self._roots

    def tail_leaves(self, lo: int, hi: int) -> list[bytes]:
        """The tail's leaf hashes of entries lo+1..hi (0-based lo >= tail_start; fewer when the
        file is short). FileNotFoundError when the file is gone: refresh and ask again."""
        with open(self.tail, "rb") as f:
            f.seek((lo - self.tail_start) * 32)
            raw = f.read((hi - lo) * 32)
        return [raw[i : i + 32] for i in range(0, len(raw) - 31, 32)]

    # ------------------------------------------------------------ writing (the ledger's writer)

    def append(self, leaves: list[bytes]) -> None:
        """Append the leaf hashes of newly committed entries to the tail, durably."""
        new = not self.tail.exists()
        with open(self.tail, "ab") as f:
            f.write(b"".join(leaves))
            f.flush()
            os.fsync(f.fileno())
        if new:  # a file's fsync covers its length; only a new file's name needs its directory's
            sync_path(self.directory)

    def truncate(self, count: int) -> int:
        """Drop the leaf hashes of entries past ``count`` (unsigned ones); how many were dropped."""
        have = self.tail_length()
        keep = max(count - self.tail_start, 0)
        if have <= keep:
            return 0
        with open(self.tail, "r+b") as f:
            f.truncate(keep * 32)
            os.fsync(f.fileno())
        return have - keep

    def compact(self, new_roots: list[bytes], size: int) -> None:
        """Move blocks ``blocks .. blocks+len(new_roots)-1`` out of the tail: ``new_roots`` are
        their roots, from the tail's leaves, which hold entries up to ``size``. Also finishes
        a compaction a crash interrupted (the tail starting before the last block's end)."""
        if new_roots:
            faults.point(MOVING)
            path = self.directory / BLOCKS_FILE
            new = not path.exists()
            with open(path, "r+b" if not new else "wb") as f:
                f.truncate(self.blocks * 32)  # a torn root a crash left
                f.seek(self.blocks * 32)
                f.write(b"".join(new_roots))
                f.flush()
                os.fsync(f.fileno())
            if new:
                sync_path(self.directory)
            self._roots = self._roots[: self.blocks]
            self.blocks += len(new_roots)
            faults.point(ROOTS_WRITTEN)
        start = self.blocks * BLOCK
        if start <= self.tail_start:
            return
        kept = self.tail_leaves(start, size)
        target = self.directory / f"{TAIL}.{start:012d}"
        write_file(target, b"".join(kept), temporary=target.with_name(target.name + ".tmp"))
        faults.point(TAIL_WRITTEN)
        old = self.tail
        self.tail_start, self.tail = start, target
        old.unlink(missing_ok=True)

    def leftovers(self) -> list[str]:
        """Remove what a compaction a crash interrupted left: a tail not yet renamed into place,
        older tails the one in use replaced. What was removed, for the ledger's recovery report."""
        done = []
        for n in os.listdir(self.directory):
            if n.startswith(TAIL) and n.endswith(".tmp"):
                (self.directory / n).unlink()
                done.append(f"removed {n}, a leaf file never put in place")
        for first, path in _tails(self.directory).items():
            if first < self.tail_start:
                path.unlink()
                done.append(f"removed {path.name}, whose leaves {BLOCKS_FILE} and {self.tail.name} hold")
        return done
