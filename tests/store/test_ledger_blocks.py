"""Leaf hashes of sealed entries kept as block roots (store/leaf_files.py): proofs, reads,
verify and opening stay what they were with every leaf stored; a wrong root or an altered
entry is caught; older ledgers (a full ``leaves`` file) open and move to blocks; a writer
killed while moving leaves loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.store.test_ledger_segments import fill, open_ledger
from vault import faults
from vault.store import leaf_files, merkle
from vault.store import segment as fmt
from vault.store.leaf_files import BLOCK
from vault.store.ledger import LedgerError, sealed_entries, stored_fields

N = 1300  # five stored blocks and a tail, sealed every ~60 entries


def _all_leaves(made: list[dict]) -> list[bytes]:
    from vault.store.ledger import canonical

    return [merkle.leaf_hash(canonical({k: v for k, v in e.items() if k != "hash"})) for e in made]


def _files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "ledger").iterdir() if p.name.startswith(("leaves", "blocks")))


def _tail_start(tmp_path, size: int) -> int:
    """Where the tail starts: after the last block the sealed segments hold whole, the last
    entry's leaf always in the tail."""
    plain = [p for p in (tmp_path / "ledger" / "segments").iterdir() if not fmt.is_sealed(p)]
    sealed_upto = fmt.first_seq(plain[0].name) - 1 if plain else size
    return min((size - 1) // BLOCK, sealed_upto // BLOCK) * BLOCK


@pytest.fixture
def blocked(tmp_path):
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10)
    made = fill(led, N, per_commit=100)
    sizes = sorted(int(p.stem) for p in (tmp_path / "ledger" / "checkpoints").glob("*.note"))
    led.close()
    return tmp_path, made, sizes


def test_sealed_blocks_keep_one_root_and_the_tail_every_leaf(blocked):
    tmp_path, made, _ = blocked
    blocks = (N - 1) // BLOCK
    assert _files(tmp_path) == ["blocks", f"leaves.{blocks * BLOCK:012d}"]
    assert (tmp_path / "ledger" / "blocks").stat().st_size == 32 * blocks
    tail = (tmp_path / "ledger" / f"leaves.{blocks * BLOCK:012d}").read_bytes()
    leaves = _all_leaves(made)
    assert tail == b"".join(leaves[blocks * BLOCK :])
    roots = (tmp_path / "ledger" / "blocks").read_bytes()
    assert [roots[i : i + 32] for i in range(0, len(roots), 32)] == [
        merkle.root(leaves[k * BLOCK : (k + 1) * BLOCK]) for k in range(blocks)
    ]


def test_proofs_reads_and_roots_equal_those_from_every_leaf(blocked):
    tmp_path, made, sizes = blocked
    leaves = _all_leaves(made)
    reader = open_ledger(tmp_path, writable=False)
    assert reader.leaves == leaves
    assert [e.to_json() for e in reader.entries()] == made
    assert [e.seq for e in reader.entries(250, 600)] == list(range(250, 601))
    for seq in (1, 255, 256, 257, 512, 513, 900, 1024, 1025, 1299, N):
        assert reader.get(seq).to_json() == made[seq - 1]
    tree_sizes = [1, 2, 100, 255, 256, 257, 300, 511, 512, 768, 1000, 1024, 1025, 1280, 1281, N]
    for size in tree_sizes:
        root = merkle.root(leaves[:size])
        for seq in sorted({1, size // 2 + 1, size, min(size, 257), min(size, 1030)}):
            proof = reader.inclusion_proof(seq, size)
            assert proof == [h.hex() for h in merkle.inclusion_proof(leaves, seq - 1, size)], (seq, size)
            assert merkle.verify_inclusion(
                leaves[seq - 1], seq - 1, size, [bytes.fromhex(h) for h in proof], root
            )
        for old in sorted({1, 255, 256, 300, size // 3 + 1, size}):
            if old <= size:
                expect = merkle.consistency_proof(leaves, old, size)
                assert reader.consistency_proof(old, size) == [h.hex() for h in expect], (old, size)
    assert reader.roots_at(tree_sizes + sizes) == {s: merkle.root(leaves[:s]) for s in tree_sizes + sizes}
    assert reader.compact_nodes() == merkle.compact_nodes(leaves)
    assert reader.leaf_slice(250, 530) == leaves[250:530]
    assert reader.verify() == []


def test_a_wrong_block_root_fails_reads_proofs_and_verify(blocked):
    tmp_path, made, _ = blocked
    path = tmp_path / "ledger" / "blocks"
    raw = bytearray(path.read_bytes())
    raw[32 * 2 + 5] ^= 1  # block 2: entries 513..768
    path.write_bytes(bytes(raw))
    reader = open_ledger(tmp_path, writable=False)
    assert reader.get(512).to_json() == made[511]  # other blocks read on
    with pytest.raises(LedgerError, match="entries 513..768 do not match their stored block root"):
        reader.get(600)
    with pytest.raises(LedgerError, match="entries 513..768"):
        list(reader.entries(700, 800))
    with pytest.raises(LedgerError, match="leaf hashes do not match the signed checkpoint"):
        reader.inclusion_proof(1)
    with pytest.raises(LedgerError, match="leaf hashes do not match the signed checkpoint"):
        reader.consistency_proof(100, N)
    problems = reader.verify()
    assert [p.what for p in problems] == ["stored root of the block of entries 513..768 differs from them"]
    assert "ledger entry 513" in problems[0].where


def _forge(tmp_path, seq: int, change) -> None:
    """Rewrite every segment with entry ``seq`` changed and the whole chain made good again
    after it (as a forger without the signing key would): only the leaf hashes, block roots
    and signed checkpoints can tell."""
    from vault.store.ledger import entry_from_fields, scan_segment

    segdir = tmp_path / "ledger" / "segments"
    prev = "0" * 64
    for seg in sorted(segdir.iterdir(), key=lambda p: fmt.first_seq(p.name)):
        fixed = []
        for _, e in scan_segment(seg):
            e = entry_from_fields(
                {**e.fields(), "data": change(dict(e.data)) if e.seq == seq else e.data}, prev
            )
            fixed.append(e)
            prev = e.hash
        lines = [stored_fields(e) + b"\n" for e in fixed]
        first = fmt.first_seq(seg.name)
        if fmt.is_sealed(seg):
            seg.write_bytes(fmt.encode_sealed(first, lines, [e.prev for e in fixed]))
        else:
            seg.write_bytes(fmt.header_line(first, fixed[0].prev) + b"".join(lines))


def test_an_altered_entry_in_a_stored_block_is_caught(blocked):
    tmp_path, made, _ = blocked
    _forge(tmp_path, 700, lambda d: {**d, "n": -1})
    reader = open_ledger(tmp_path, writable=False)
    assert reader.get(100).to_json() == made[99]
    with pytest.raises(LedgerError, match="entries 513..768 do not match their stored block root"):
        reader.get(513)
    with pytest.raises(LedgerError, match="entries 513..768"):
        list(reader.entries())
    with pytest.raises(LedgerError, match="entries 1025..1280"):  # chained through it
        reader.get(1030)
    with pytest.raises(LedgerError, match="entry 1290 does not match its stored leaf hash"):
        reader.get(1290)  # the tail
    problems = reader.verify()
    assert [(p.where.split(" (")[0], p.what) for p in problems[:2]] == [
        (
            "ledger entry 1281",
            "stored leaf hash differs from the entry (and for the 19 entries after it, chained through it)",
        ),
        (
            "ledger entry 513",
            "stored root of the block of entries 513..768 differs from them (and of the 2 blocks after it)",
        ),
    ], problems
    assert all("Merkle root" in p.what for p in problems[2:]) and len(problems) > 2  # checkpoints from 700 on


def test_an_altered_entry_that_breaks_the_chain_is_caught(blocked):
    tmp_path, _, _ = blocked
    seg = max(
        (p for p in (tmp_path / "ledger" / "segments").glob("*.zst") if fmt.first_seq(p.name) <= 700),
        key=lambda p: fmt.first_seq(p.name),
    )
    entries = sealed_entries(seg.read_bytes(), seg.name)
    lines = [stored_fields(e) + b"\n" for e in entries]
    i = 700 - entries[0].seq
    lines[i] = lines[i].replace(b'"n":699', b'"n":-1')
    seg.write_bytes(fmt.encode_sealed(entries[0].seq, lines, [e.prev for e in entries]))
    reader = open_ledger(tmp_path, writable=False)
    with pytest.raises(LedgerError):
        reader.get(600)
    assert reader.verify() != []


def test_a_writer_reopens_and_grows_the_tree_from_blocks(blocked):
    tmp_path, made, _ = blocked
    (tmp_path / "ledger" / "tree.json").unlink()  # rebuilt from the block roots and the tail
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10)
    assert not led.resumed
    made += fill(led, 500, N, per_commit=70)
    cp = led.checkpoint()
    led.close()
    assert cp.root == merkle.root(_all_leaves(made)).hex()
    assert _files(tmp_path) == ["blocks", f"leaves.{_tail_start(tmp_path, len(made)):012d}"]
    assert _tail_start(tmp_path, len(made)) > N
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made and reader.verify() == []


def _as_before_blocks(tmp_path, made):
    """The ledger as vault wrote it before blocks: every leaf hash in ``leaves``."""
    for name in _files(tmp_path):
        (tmp_path / "ledger" / name).unlink()
    (tmp_path / "ledger" / "leaves").write_bytes(b"".join(_all_leaves(made)))


def test_an_older_ledger_with_every_leaf_opens_reads_and_moves_to_blocks(blocked):
    tmp_path, made, _ = blocked
    _as_before_blocks(tmp_path, made)
    leaves = _all_leaves(made)
    reader = open_ledger(tmp_path, writable=False)  # a reader reads it as it is
    assert [e.to_json() for e in reader.entries()] == made
    assert reader.inclusion_proof(700) == [h.hex() for h in merkle.inclusion_proof(leaves, 699)]
    assert reader.verify() == []
    assert _files(tmp_path) == ["leaves"]
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10)  # a writer moves it to blocks
    assert led.resumed
    assert _files(tmp_path) == ["blocks", f"leaves.{(N - 1) // BLOCK * BLOCK:012d}"]
    made += fill(led, 10, N)
    led.close()
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made and reader.verify() == []
    assert reader.inclusion_proof(700) == [h.hex() for h in merkle.inclusion_proof(_all_leaves(made), 699)]


def test_a_reader_opened_before_leaves_move_to_blocks_reads_on(tmp_path):
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10)
    made = fill(led, 250, per_commit=250)
    reader = open_ledger(tmp_path, writable=False)
    assert reader.get(10).to_json() == made[9]
    assert _files(tmp_path) == ["leaves"]
    made += fill(led, 300, 250, per_commit=300)  # seals: entries 1..512 become blocks 0 and 1
    led.close()
    assert _files(tmp_path) == ["blocks", f"leaves.{512:012d}"]
    assert reader.get(200).to_json() == made[199]  # its tail file is gone: it lists again
    assert [e.to_json() for e in reader.entries()] == made[:250]
    assert reader.inclusion_proof(3) == [h.hex() for h in merkle.inclusion_proof(_all_leaves(made), 2, 250)]


@pytest.mark.parametrize("point", [leaf_files.ROOTS_WRITTEN, leaf_files.TAIL_WRITTEN, leaf_files.MOVING])
def test_a_writer_killed_while_moving_leaves_to_blocks_loses_nothing(tmp_path, point):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from vault.store.ledger import Ledger
        led = Ledger.open({str(tmp_path / "ledger")!r}, key_path={str(tmp_path / "key")!r},
                          origin="test.example/ledger", segment_max_bytes=16384, segment_max_age_hours=1e6)
        for i in range(700):
            led.append("message.appended", item=f"box:1:{{i}}", data={{"n": i, "pad": "x" * 200}})
            if i % 50 == 49:
                led.commit()
    """)
    run = subprocess.run([sys.executable, "-c", script], env={**os.environ, faults.ENV: point})
    assert run.returncode == -9, "the writer was not killed where the test meant"
    reader = open_ledger(tmp_path, writable=False)
    committed = [e.to_json() for e in reader.entries()]
    assert len(committed) > BLOCK and reader.verify() == []
    leaves = _all_leaves(committed)
    assert reader.inclusion_proof(5) == [h.hex() for h in merkle.inclusion_proof(leaves, 4)]
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10)
    assert [e.to_json() for e in led.entries()] == committed  # nothing lost
    blocks = (len(committed) - 1) // BLOCK
    assert _files(tmp_path) == ["blocks", f"leaves.{blocks * BLOCK:012d}"]  # the move finished
    made = committed + fill(led, 30, 5000, per_commit=10)
    led.close()
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made and reader.verify() == []
    assert json.loads((tmp_path / "ledger" / "tree.json").read_text())["size"] == len(made)
