"""The ledger through its Python API: append/commit/reopen, checkpoints, recovery, tampering."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.store.checkpoint import CheckpointError, verify_checkpoint_note
from vault.store.ledger import Ledger, LedgerError, decode_line, sealed_entries


def open_ledger(tmp_path, **kw):
    return Ledger.open(tmp_path / "ledger", key_path=tmp_path / "key", origin="test.example/ledger", **kw)


def fill(ledger, n, start=0):
    for i in range(start, start + n):
        ledger.append("message.appended", item=f"box:1:{i}", data={"blob": f"sha256:{i:064x}", "n": i})
    return ledger.commit()


def test_append_commit_reopen_and_read(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 30)
    fill(led, 12, 30)
    led.close()
    again = open_ledger(tmp_path, writable=False)
    entries = list(again.entries())
    assert [e.seq for e in entries] == list(range(1, 43))
    assert entries[5].data["n"] == 5 and again.get(40).item == "box:1:39"
    assert [e.seq for e in again.entries(10, 12)] == [10, 11, 12]
    assert again.verify() == []


def test_checkpoint_is_a_c2sp_signed_note(tmp_path):
    led = open_ledger(tmp_path)
    cp = fill(led, 5)
    text, _, sig = cp.note.decode().partition("\n\n")
    origin, size, root = text.split("\n")
    assert (origin, int(size), base64.b64decode(root).hex()) == ("test.example/ledger", 5, cp.root)
    dash, name, blob = sig.strip().split(" ")
    assert dash == "\u2014" and name == "test.example/ledger" and len(base64.b64decode(blob)) == 4 + 64
    assert verify_checkpoint_note(cp.note, led.verifier_key()).size == 5
    forged = cp.note.replace(b"\n5\n", b"\n6\n")
    with pytest.raises(CheckpointError):
        verify_checkpoint_note(forged, led.verifier_key())
    other = Ledger.open(tmp_path / "other", key_path=tmp_path / "key2", origin="test.example/ledger")
    with pytest.raises(CheckpointError):
        verify_checkpoint_note(cp.note, other.verifier_key())


def test_second_writer_is_refused(tmp_path):
    led = open_ledger(tmp_path)
    with pytest.raises(LedgerError, match="locked"):
        open_ledger(tmp_path)
    led.close()


def test_uncommitted_tail_is_cut_after_sigkill(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 10)
    led.close()
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from vault.store.ledger import Ledger
        from vault.store import ledger as mod
        led = Ledger.open({str(tmp_path / "ledger")!r}, key_path={str(tmp_path / "key")!r}, origin="test.example/ledger")
        for i in range(5):
            led.append("message.appended", item=f"box:1:{{i}}", data={{}})
        mod.sign = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die before the checkpoint
        led.commit()
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    read_only = open_ledger(tmp_path, writable=False)
    assert read_only.size == 10
    assert any("not signed" in p.what for p in read_only.verify())
    led = open_ledger(tmp_path)
    assert led.size == 10 and led.recovered() and not led.resumed  # tree.json is stale: rebuilt
    assert led.verify() == []
    fill(led, 3)
    assert led.verify() == [] and led.size == 13


def test_proofs_verify_against_the_checkpoint(tmp_path):
    from vault.store import merkle

    led = open_ledger(tmp_path)
    fill(led, 20)
    first = led.checkpoint()
    cp = fill(led, 17, 20)
    for seq in (1, 7, 20, 37):
        proof = [bytes.fromhex(h) for h in led.inclusion_proof(seq)]
        leaf = merkle.leaf_hash(led.get(seq).canonical())
        assert merkle.verify_inclusion(leaf, seq - 1, cp.size, proof, bytes.fromhex(cp.root))
    proof = [bytes.fromhex(h) for h in led.consistency_proof(20, 37)]
    assert merkle.verify_consistency(20, 37, proof, bytes.fromhex(first.root), bytes.fromhex(cp.root))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_line_decoder_only_raises_ledger_error(line):
    try:
        decode_line(line)
    except LedgerError:
        pass


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_flipped_byte_in_a_segment_is_detected(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("flip")
    led = open_ledger(base)
    fill(led, 8)
    led.close()
    seg = next((base / "ledger" / "segments").iterdir())
    raw = bytearray(seg.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    raw[pos] = new
    seg.write_bytes(bytes(raw))
    assert open_ledger(base, writable=False).verify() != []


def _stamp(hours_ago: float) -> str:
    from datetime import timedelta

    from vault.model import format_time, now

    return format_time(now() - timedelta(hours=hours_ago))


def _sealing_ledger(tmp_path, max_age_hours: float, sealed: dict):
    from vault.model import blob_id

    def seal(data: bytes) -> str:
        sealed[blob_id(data)] = data
        return blob_id(data)

    return open_ledger(tmp_path, segment_max_age_hours=max_age_hours, seal=seal)


def test_a_segment_seals_by_the_age_of_its_first_entry(tmp_path):
    sealed: dict[str, bytes] = {}
    led = _sealing_ledger(tmp_path, 1, sealed)
    for i in range(3):
        led.append("message.appended", item=f"box:1:{i}", time=_stamp(2))
    led.commit()
    assert len(led.sealed_blobs()) == 1, "a segment whose first entry is 2 h old outlived a 1 h limit"
    first_segment = sealed[led.sealed_blobs()[0]]
    assert [e.seq for e in sealed_entries(first_segment)] == [1, 2, 3]
    # the next commit starts a young segment, which stays open however often it is appended to
    for i in range(3, 6):
        led.append("message.appended", item=f"box:1:{i}", time=_stamp(0))
        led.commit()
    assert len(led.sealed_blobs()) == 1
    assert led.verify(blob_exists=sealed.__contains__) == []


def test_age_is_read_from_the_segment_after_a_reopen(tmp_path):
    sealed: dict[str, bytes] = {}
    led = _sealing_ledger(tmp_path, 24, sealed)
    led.append("message.appended", item="box:1:1", time=_stamp(2))
    led.commit()
    led.close()
    assert sealed == {}
    # appending touches the file (fresh ctime and mtime): only the first entry knows its age
    led = _sealing_ledger(tmp_path, 1, sealed)
    led.append("message.appended", item="box:1:2", time=_stamp(0))
    led.commit()
    assert len(led.sealed_blobs()) == 1
    assert [e.seq for e in sealed_entries(sealed[led.sealed_blobs()[0]])] == [1, 2]


def test_a_sealed_segment_is_never_appended_to_after_a_reopen(tmp_path):
    sealed: dict[str, bytes] = {}
    led = _sealing_ledger(tmp_path, 1, sealed)
    led.append("message.appended", item="box:1:1", time=_stamp(2))
    led.commit()
    led.close()
    led = _sealing_ledger(tmp_path, 1, sealed)
    for i in (2, 3):
        led.append("message.appended", item=f"box:1:{i}", time=_stamp(0))
        led.commit()
    segments = sorted((tmp_path / "ledger" / "segments").iterdir())
    assert [p.name for p in segments] == ["000000000001.jsonl.zst", "000000000002.jsonl"]
    # what was sealed is still exactly the file, and sealed once
    assert list(sealed.values()) == [segments[0].read_bytes()]
    assert len(led.sealed_blobs()) == 1
    assert [e.seq for e in led.entries()] == [1, 2, 3]
    assert led.verify(blob_exists=sealed.__contains__) == []


# ------------------------------------------------------------ the compact range kept in tree.json


def _root_of_all(tmp_path) -> str:
    from vault.store import merkle

    raw = (tmp_path / "ledger" / "leaves").read_bytes()
    return merkle.root([raw[i : i + 32] for i in range(0, len(raw), 32)]).hex()


@pytest.mark.parametrize("first, more", [(1, 1), (2, 5), (7, 1), (8, 8), (33, 31), (100, 28)])
def test_a_writer_resumes_from_the_saved_range_to_the_same_root(tmp_path, first, more):
    led = open_ledger(tmp_path)
    fill(led, first)
    led.close()
    assert (tmp_path / "ledger" / "tree.json").exists()
    led = open_ledger(tmp_path)
    assert led.resumed and led.size == first
    cp = fill(led, more, first)
    led.close()
    # the same tree grown by a writer that rebuilt the range from every leaf hash
    assert cp.root == _root_of_all(tmp_path)
    assert open_ledger(tmp_path, writable=False).verify() == []


def _ledger_with_stale_state(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 9)
    stale = (tmp_path / "ledger" / "tree.json").read_bytes()
    fill(led, 4, 9)
    led.close()
    return stale


def _good_state(tmp_path) -> dict:
    import json

    return json.loads((tmp_path / "ledger" / "tree.json").read_text())


def _corruptions(tmp_path, stale: bytes):
    import json

    good = _good_state(tmp_path)
    flipped = list(good["range"])
    flipped[0] = ("0" if flipped[0][0] != "0" else "1") + flipped[0][1:]
    yield "garbage", b"\x00not json"
    yield "empty", b""
    yield "stale (an earlier commit's)", stale
    yield "a subtree hash changed", json.dumps({**good, "range": flipped}).encode()
    yield "a subtree hash missing", json.dumps({**good, "range": good["range"][1:]}).encode()
    yield "another last entry", json.dumps({**good, "last": "ab" * 32}).encode()
    yield "another size", json.dumps({**good, "size": good["size"] + 1}).encode()
    yield "another segment length", json.dumps({**good, "length": good["length"] - 1}).encode()
    yield "wrong types", json.dumps({**good, "range": 5}).encode()


def test_a_damaged_or_stale_range_is_ignored(tmp_path):
    import shutil

    stale = _ledger_with_stale_state(tmp_path)
    for what, content in list(_corruptions(tmp_path, stale)):
        base = tmp_path / what.replace(" ", "_").replace("'", "")
        shutil.copytree(tmp_path / "ledger", base / "ledger")
        shutil.copy(tmp_path / "key", base / "key")
        (base / "ledger" / "tree.json").write_bytes(content)
        led = open_ledger(base)
        assert not led.resumed, what
        assert led.size == 13 and led.recovered() == [], what
        cp = fill(led, 6, 13)
        led.close()
        assert cp.root == _root_of_all(base), what
        assert open_ledger(base, writable=False).verify() == [], what
        # the fallback wrote a good range again: the next writer resumes
        assert open_ledger(base).resumed, what


def test_a_missing_range_is_rebuilt_and_the_next_writer_resumes(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 21)
    led.close()
    (tmp_path / "ledger" / "tree.json").unlink()
    led = open_ledger(tmp_path)
    assert not led.resumed
    led.close()
    assert open_ledger(tmp_path).resumed


def test_an_edited_last_entry_is_not_resumed_from(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 5)
    led.close()
    seg = next((tmp_path / "ledger" / "segments").iterdir())
    lines = seg.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"n":4', b'"n":5')
    seg.write_bytes(b"".join(lines))  # same length: only the entry's content tells
    with pytest.raises(LedgerError, match="entry 5 does not match its stored leaf hash"):
        open_ledger(tmp_path)
    problems = open_ledger(tmp_path, writable=False).verify()
    assert any("entry 5" in p.where for p in problems)


def test_a_reader_checks_leaf_hashes_when_a_proof_needs_them(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 6)
    led.close()
    leaves = tmp_path / "ledger" / "leaves"
    raw = bytearray(leaves.read_bytes())
    raw[40] ^= 1
    leaves.write_bytes(bytes(raw))
    reader = open_ledger(tmp_path, writable=False)
    with pytest.raises(LedgerError, match="leaf hashes do not match"):
        reader.inclusion_proof(3)
    assert any("leaf hash" in p.what for p in reader.verify())
