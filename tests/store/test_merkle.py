"""RFC 9162 tree: roots against an independent naive MTH; every proof verifies, wrong ones fail."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from vault.store import merkle


def naive_mth(data: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, written out literally."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(data[:k]) + naive_mth(data[k:])).digest()


def test_roots_and_all_proofs_for_sizes_1_to_70():
    for n in range(1, 71):
        data = [f"entry {i}".encode() for i in range(n)]
        leaves = [merkle.leaf_hash(d) for d in data]
        root = merkle.root(leaves)
        assert root == naive_mth(data), n
        for i in range(n):
            proof = merkle.inclusion_proof(leaves, i)
            assert merkle.verify_inclusion(leaves[i], i, n, proof, root)
            assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), i, n, proof, root)
            if proof:
                assert not merkle.verify_inclusion(leaves[i], i, n, proof[:-1], root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(leaves, m, n)
            old = naive_mth(data[:m])
            assert merkle.verify_consistency(m, n, proof, old, root)
            if m < n:
                assert not merkle.verify_consistency(m, n, proof, naive_mth(data[: m - 1] + [b"x"]), root)


@given(st.integers(1, 300), st.data())
def test_inclusion_against_naive_root(n, data):
    i = data.draw(st.integers(0, n - 1))
    leaves = [merkle.leaf_hash(str(k).encode()) for k in range(n)]
    root = naive_mth([str(k).encode() for k in range(n)])
    assert merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(leaves, i), root)


def test_consistency_from_compact_nodes_equals_the_full_proof():
    """A witness gets the same proof whether it is built from every leaf or from the old
    tree's compact nodes and the new leaves only (what a writer holds)."""
    for n in range(1, 70):
        leaves = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]
        for m in range(1, n + 1):
            nodes = merkle.compact_nodes(leaves[:m])
            assert merkle.root_of_nodes(nodes) == merkle.root(leaves[:m])
            assert merkle.consistency_proof_extending(nodes, m, leaves[m:]) == merkle.consistency_proof(
                leaves, m, n
            ), (m, n)
