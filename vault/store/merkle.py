"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their verification.

Standalone on purpose (hashlib only): an export is checked offline with this module alone.
"""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes (already hashed with leaf_hash)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Bottom-up pairing reproduces MTH's left-heavy split: an odd node is promoted.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: list[bytes], index: int, size: int | None = None) -> list[bytes]:
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    return inclusion_proof_from(lambda lo, hi: root(leaves[lo:hi]), index, size)


def inclusion_proof_from(mth, index: int, size: int) -> list[bytes]:
    """RFC 9162 section 2.1.3.1, with ``mth(lo, hi)`` the root of leaves lo..hi-1 (every range
    asked for is a node of the tree: lo is a multiple of the power of two at or above its size)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")

    def path(m: int, lo: int, n: int) -> list[bytes]:
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return path(m, lo, k) + [mth(lo + k, lo + n)]
        return path(m - k, lo + k, n - k) + [mth(lo, lo + k)]

    return path(index, 0, size)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def consistency_proof(leaves: list[bytes], old: int, new: int | None = None) -> list[bytes]:
    new = len(leaves) if new is None else new
    if not 0 < old <= new <= len(leaves):
        raise ValueError(f"no consistency proof from {old} to {new}")
    return consistency_proof_from(lambda lo, hi: root(leaves[lo:hi]), old, new)


def consistency_proof_from(mth, old: int, new: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1, with ``mth(lo, hi)`` the root of leaves lo..hi-1."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")

    def subproof(m: int, lo: int, n: int, complete: bool) -> list[bytes]:
        if m == n:
            return [] if complete else [mth(lo, lo + n)]
        k = _split(n)
        if m <= k:
            return subproof(m, lo, k, complete) + [mth(lo + k, lo + n)]
        return subproof(m - k, lo + k, n - k, False) + [mth(lo, lo + k)]

    return subproof(old, 0, new, True)


def compact_nodes(leaves: list[bytes]) -> list[bytes]:
    """The roots of the perfect subtrees a tree of these leaves splits into, biggest (leftmost)
    first: one per set bit of its size. They are all a tree's old part contributes to a
    consistency proof (``consistency_proof_extending``)."""
    out, lo = [], 0
    for h in range(len(leaves).bit_length() - 1, -1, -1):
        if len(leaves) >> h & 1:
            out.append(root(leaves[lo : lo + (1 << h)]))
            lo += 1 << h
    return out


def root_of_nodes(nodes: list[bytes]) -> bytes:
    """The tree's root from its compact nodes (compact_nodes)."""
    if not nodes:
        return root([])
    r = nodes[-1]
    for h in reversed(nodes[:-1]):
        r = node_hash(h, r)
    return r


def consistency_proof_extending(old_nodes: list[bytes], old: int, tail: list[bytes]) -> list[bytes]:
    """The consistency proof from size ``old`` to ``old + len(tail)``, from the old tree's
    compact nodes and the new leaves alone: O(new leaves + log n) hashing instead of the
    whole tree. Every node a proof takes from below ``old`` is one of the compact nodes, and
    every other lies wholly among the new leaves."""
    new = old + len(tail)
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    spans, lo = {}, 0
    heights = [h for h in range(old.bit_length() - 1, -1, -1) if old >> h & 1]
    if len(heights) != len(old_nodes):
        raise ValueError(f"{len(old_nodes)} compact nodes cannot be a tree of size {old}")
    for h, node in zip(heights, old_nodes):
        spans[(lo, lo + (1 << h))] = node
        lo += 1 << h

    def mth(lo: int, hi: int) -> bytes:
        if (lo, hi) in spans:
            return spans[(lo, hi)]
        if lo >= old:
            return root(tail[lo - old : hi - old])
        raise ValueError(f"nodes {lo}..{hi} are not available")  # cannot happen (see above)

    return consistency_proof_from(mth, old, new)


def verify_consistency(old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old == new:
        return not proof and old_root == new_root
    if old == 0 or old > new:
        return False
    if old & (old - 1) == 0:  # a power of two: the old root is the first proof node
        proof = [old_root] + list(proof)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
