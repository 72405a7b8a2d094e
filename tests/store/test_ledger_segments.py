"""How the ledger stores entries: format 2 segments, sealed (compressed) segments, old ones."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.model import blob_id
from vault.store import segment as fmt
from vault.store.ledger import Ledger, LedgerError, sealed_entries, stored_fields


def open_ledger(tmp_path, **kw):
    kw.setdefault("segment_max_age_hours", 10**6)  # entries carry fixed times, long past
    return Ledger.open(tmp_path / "ledger", key_path=tmp_path / "key", origin="test.example/ledger", **kw)


def _sealer(store: dict):
    def seal(data: bytes) -> str:
        store[blob_id(data)] = data
        return blob_id(data)

    return seal


def fill(led, n, start=0, per_commit=50):
    made = []
    for i in range(start, start + n):
        made.append(
            led.append(
                "message.appended",
                item=f"box:1:{i}",
                data={"blob": f"sha256:{i * 7919:064x}", "n": i, "prev": "not the chain's", "q": 'a "quote"'},
                time=f"2026-11-01T12:00:00.{i:06d}Z",  # fixed: the same bytes every run
            ).to_json()
        )
        if (i - start + 1) % per_commit == 0:
            led.commit()
    led.commit()
    return made


def _segments(tmp_path):
    return sorted((tmp_path / "ledger" / "segments").iterdir())


@pytest.fixture
def sealed_ledger(tmp_path):
    """700 entries in segments sealed at 64 KiB: two sealed of several frames, one plain."""
    store: dict[str, bytes] = {}
    led = open_ledger(tmp_path, segment_max_bytes=64 << 10, seal=_sealer(store))
    made = fill(led, 700)
    led.close()
    return tmp_path, made, store


def test_any_entry_reads_back_after_its_segment_is_sealed(sealed_ledger):
    tmp_path, made, store = sealed_ledger
    names = [p.name for p in _segments(tmp_path)]
    sealed = [n for n in names if n.endswith(".jsonl.zst")]
    assert len(sealed) >= 2 and names[-1].endswith(".jsonl"), names
    reader = open_ledger(tmp_path, writable=False)
    for seq in (1, 2, 255, 256, 257, 300, 513, 699, 700):
        assert reader.get(seq).to_json() == made[seq - 1]
    assert [e.to_json() for e in reader.entries()] == made
    assert [e.seq for e in reader.entries(250, 260)] == list(range(250, 261))
    assert reader.verify(blob_exists=store.__contains__) == []
    # a sealed blob is the sealed file, byte for byte, and readable alone
    first = _segments(tmp_path)[0]
    assert first.read_bytes() in store.values()
    alone = [e.to_json() for e in sealed_entries(first.read_bytes(), first.name)]
    assert len(alone) > fmt.FRAME_ENTRIES and alone == made[: len(alone)]
    # and a plain zstd stream: zstd -dc prints its entry lines (the index frame is skipped)
    with zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(first.read_bytes()), read_across_frames=True
    ) as r:
        lines = r.read().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, len(lines) + 1))
    assert all(set(json.loads(x)) == {"seq", "time", "kind", "item", "actor", "data"} for x in lines)


def test_a_writer_resumes_after_a_sealed_segment_and_reads_on(tmp_path):
    store: dict[str, bytes] = {}
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10, seal=_sealer(store))
    made = fill(led, 40, per_commit=40)
    made += fill(led, 40, 40, per_commit=40)
    led.close()
    assert _segments(tmp_path)[-1].name.endswith(".jsonl.zst")  # the last commit sealed
    led = open_ledger(tmp_path, segment_max_bytes=16 << 10, seal=_sealer(store))
    assert led.resumed
    made += fill(led, 5, 80)
    led.close()
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made
    assert reader.verify(blob_exists=store.__contains__) == []


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_flipped_byte_in_a_sealed_segment_is_caught_naming_it(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("sealedflip")
    led = open_ledger(base, segment_max_bytes=32 << 10)
    fill(led, 300, per_commit=100)
    led.close()
    seg = next(p for p in _segments(base) if p.name.endswith(".jsonl.zst"))
    raw = bytearray(seg.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    seg.write_bytes(bytes(raw))
    problems = open_ledger(base, writable=False).verify()
    assert any(seg.name in p.where for p in problems), problems


def test_a_reader_opened_before_a_seal_reads_on_after_it(tmp_path):
    led = open_ledger(tmp_path, segment_max_bytes=1 << 20)
    made = fill(led, 120)
    reader = open_ledger(tmp_path, writable=False)
    assert reader.get(100).to_json() == made[99]  # cached from the plain segment
    led.segment_max_bytes = 1  # the next commit seals the segment: its plain file goes
    made += fill(led, 1, 120)
    assert [p.name for p in _segments(tmp_path)] == ["000000000001.jsonl.zst"]
    assert [e.to_json() for e in reader.entries()] == made[:120]
    assert reader.get(7).to_json() == made[6]
    assert reader.verify() == []


def test_a_seal_a_crash_interrupted_is_finished_by_the_next_writer(tmp_path):
    store: dict[str, bytes] = {}
    led = open_ledger(tmp_path, segment_max_bytes=1 << 20, seal=_sealer(store))
    made = fill(led, 60)
    plain = _segments(tmp_path)[0]
    kept = plain.read_bytes()
    led.segment_max_bytes = 1
    made += fill(led, 1, 60)
    led.close()
    # as if the writer died after writing the sealed file, before sealed.json and the unlink
    plain.write_bytes(kept)
    (tmp_path / "ledger" / "sealed.json").unlink()
    store.clear()
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made  # the sealed file hides the plain one
    led = open_ledger(tmp_path, seal=_sealer(store))
    assert any("finished sealing" in r for r in led.recovered())
    assert not plain.exists() and len(led.sealed_blobs()) == 1 and led.sealed_blobs()[0] in store
    made += fill(led, 3, 61)
    assert [e.to_json() for e in led.entries()] == made
    assert led.verify(blob_exists=store.__contains__) == []


# ------------------------------------------------------------ format 1 segments (older ledgers)


def _v1_line(entry: dict) -> bytes:
    """A format 1 line, as ledgers before format 2 wrote them: the canonical object with
    ``"hash"`` inserted before its final brace (docs/architecture.md 3.2)."""
    fields = {k: v for k, v in entry.items() if k != "hash"}
    canon = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return canon[:-1] + b',"hash":"' + entry["hash"].encode() + b'"}\n'


def _as_format_1(tmp_path, made, split):
    """Rewrite a ledger's segments as format 1 files: 1..split sealed, the rest active."""
    segdir = tmp_path / "ledger" / "segments"
    shutil.rmtree(segdir)
    segdir.mkdir()
    (segdir / "000000000001.jsonl").write_bytes(b"".join(_v1_line(e) for e in made[:split]))
    (segdir / f"{split + 1:012d}.jsonl").write_bytes(b"".join(_v1_line(e) for e in made[split:]))
    sealed = [{"file": "000000000001.jsonl", "first": 1, "last": split, "blob": None}]
    (tmp_path / "ledger" / "sealed.json").write_text(json.dumps(sealed))
    (tmp_path / "ledger" / "tree.json").unlink()


def test_format_1_segments_still_read_verify_and_are_sealed_not_appended_to(tmp_path):
    led = open_ledger(tmp_path)
    made = fill(led, 90)
    led.close()
    _as_format_1(tmp_path, made, 40)
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made
    assert reader.get(40).to_json() == made[39] and reader.get(41).to_json() == made[40]
    assert reader.verify() == []
    store: dict[str, bytes] = {}
    led = open_ledger(tmp_path, seal=_sealer(store))
    made += fill(led, 10, 90)
    names = [p.name for p in _segments(tmp_path)]
    # the sealed format 1 file stays; the active one is sealed before the next commit
    assert names == ["000000000001.jsonl", "000000000041.jsonl.zst", "000000000091.jsonl"]
    assert (tmp_path / "ledger" / "segments" / names[-1]).read_bytes().startswith(b'{"ledger_segment":2')
    led.close()
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made
    assert reader.verify() == []


def test_a_changed_format_1_line_is_still_caught(tmp_path):
    led = open_ledger(tmp_path)
    made = fill(led, 20)
    led.close()
    _as_format_1(tmp_path, made, 10)
    seg = tmp_path / "ledger" / "segments" / "000000000011.jsonl"
    seg.write_bytes(seg.read_bytes().replace(b'"n":14', b'"n":41'))
    problems = open_ledger(tmp_path, writable=False).verify()
    assert any("entry 15" in p.where for p in problems), problems
    with pytest.raises(LedgerError):
        open_ledger(tmp_path, writable=False).get(15)


def test_a_changed_format_2_line_is_caught_on_read(tmp_path):
    led = open_ledger(tmp_path)
    fill(led, 20)
    led.close()
    seg = _segments(tmp_path)[0]
    seg.write_bytes(seg.read_bytes().replace(b'"n":14', b'"n":41'))
    with pytest.raises(LedgerError, match="entry 15 does not match its stored leaf hash"):
        open_ledger(tmp_path, writable=False).get(15)
    # an entry read by seq chains through the lines before it: each of them counts too
    with pytest.raises(LedgerError, match="entry 16 does not match its stored leaf hash"):
        open_ledger(tmp_path, writable=False).get(16)
    assert open_ledger(tmp_path, writable=False).get(14).data["n"] == 13
    with pytest.raises(LedgerError, match="entry 15"):
        list(open_ledger(tmp_path, writable=False).entries())
    problems = open_ledger(tmp_path, writable=False).verify()
    assert problems[0].where.startswith("ledger entry 15 (") and "leaf hash" in problems[0].what
    assert len([p for p in problems if "leaf hash" in p.what]) == 1  # one report for the run after it


def test_a_reader_never_reads_past_its_checkpoint_into_a_line_being_written(tmp_path):
    led = open_ledger(tmp_path)
    made = fill(led, 30)
    led.close()
    reader = open_ledger(tmp_path, writable=False)
    seg = _segments(tmp_path)[-1]
    with open(seg, "ab") as f:  # a writer's next line, half written
        f.write(b'{"actor":null,"data":{"bl')
    assert reader.get(30).to_json() == made[29]
    assert reader.get(3).to_json() == made[2]
    assert [e.to_json() for e in reader.entries(25)] == made[24:]
    # the next writer cuts it, and its entries follow on
    led = open_ledger(tmp_path)
    assert led.recovered() and seg.read_bytes().endswith(b"}\n")
    made += fill(led, 2, 30)
    assert [e.to_json() for e in led.entries()] == made and led.verify() == []


def test_every_byte_of_a_format_2_line_counts_even_a_json_equivalent_one(tmp_path):
    led = open_ledger(tmp_path)
    led.append("folder.created", item="box", data={"name": "user/j\udce9"})  # a non-UTF-8 name
    led.commit()
    led.close()
    seg = _segments(tmp_path)[0]
    raw = seg.read_bytes()
    assert b"\\udce9" in raw
    seg.write_bytes(raw.replace(b"\\udce9", b"\\udcE9"))  # the same string to json.loads
    problems = open_ledger(tmp_path, writable=False).verify()
    assert [p.where for p in problems][:1] == [f"ledger entry 1 ({seg.name} line 2)"], problems
    assert "canonical" in problems[0].what


def test_readers_in_another_process_read_on_while_a_writer_seals(tmp_path):
    """A writer process commits and seals (every 4 KiB) while this one reads: a reader whose
    plain segment is sealed under it lists again, and never sees a torn line."""
    import os
    import subprocess
    import sys
    import textwrap

    led = open_ledger(tmp_path)
    fill(led, 5)
    led.close()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from vault.store.ledger import Ledger
        led = Ledger.open({str(tmp_path / "ledger")!r}, key_path={str(tmp_path / "key")!r},
                          origin="test.example/ledger", segment_max_bytes=4096, segment_max_age_hours=10**6)
        for i in range(600):
            led.append("message.appended", item=f"box:1:{{i}}", data={{"n": i}})
            if i % 3 == 2:
                led.commit()
        led.commit()
    """)
    writer = subprocess.Popen([sys.executable, "-c", script])
    reads = 0
    try:
        while writer.poll() is None or reads == 0:
            reader = open_ledger(tmp_path, writable=False)
            seen = list(reader.entries())
            assert [e.seq for e in seen] == list(range(1, reader.size + 1))
            for seq in range(1, reader.size + 1, 7):
                assert reader.get(seq).hash == seen[seq - 1].hash
            reads += 1
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    final = open_ledger(tmp_path, writable=False)
    assert final.size == 605 and final.verify() == []
    assert sum(p.name.endswith(".jsonl.zst") for p in _segments(tmp_path)) > 5


@pytest.mark.parametrize("copy", [True, False], ids=["copied-to-store", "one-copy"])
@pytest.mark.parametrize("point", ["writing the sealed file", "before sealed.json", "before the unlink"])
def test_a_writer_killed_while_sealing_loses_nothing(tmp_path, point, copy):
    """``copy``: the store is elsewhere and gets each sealed segment (an S3 bucket), or it
    is on the ledger's disk and the sealed file is the one copy (archive._sealer)."""
    import os
    import subprocess
    import sys
    import textwrap

    store = tmp_path / "store"
    store.mkdir()
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {os.getcwd()!r})
        from vault.store import ledger as mod
        point = {point!r}
        def die():
            os.kill(os.getpid(), signal.SIGKILL)
        real_write, real_unlink = mod._atomic_write, Path.unlink
        def atomic_write(path, data):
            if point == "writing the sealed file" and path.name.endswith(".zst"):
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(data[: len(data) // 2])
                die()
            if point == "before sealed.json" and path.name == "sealed.json":
                die()
            real_write(path, data)
        def unlink(self, *a, **k):
            if point == "before the unlink" and self.name.endswith(".jsonl"):
                die()
            real_unlink(self, *a, **k)
        mod._atomic_write, Path.unlink = atomic_write, unlink
        def seal(data):
            import hashlib
            name = hashlib.sha256(data).hexdigest()
            (Path({str(store)!r}) / name).write_bytes(data)
            return "sha256:" + name
        led = mod.Ledger.open({str(tmp_path / "ledger")!r}, key_path={str(tmp_path / "key")!r},
                              origin="test.example/ledger", segment_max_bytes=8192,
                              seal=seal if {copy!r} else None)
        for i in range(100):
            led.append("message.appended", item=f"box:1:{{i}}", data={{"n": i}})
            if i % 10 == 9:
                led.commit()
    """)
    run = subprocess.run([sys.executable, "-c", script])
    assert run.returncode == -9, "the writer was not killed where the test meant"
    reader = open_ledger(tmp_path, writable=False)
    committed = [e.to_json() for e in reader.entries()]
    assert committed and reader.verify() == []

    def seal(data: bytes) -> str:
        (store / blob_id(data).split(":")[1]).write_bytes(data)
        return blob_id(data)

    led = open_ledger(tmp_path, segment_max_bytes=8192, seal=seal if copy else None)
    assert [e.to_json() for e in led.entries()] == committed  # nothing lost
    made = committed + fill(led, 30, 1000, per_commit=10)
    led.close()
    names = [p.name for p in _segments(tmp_path)]
    assert not any(n.endswith(".tmp") for n in names)
    firsts = [fmt.first_seq(n) for n in names]
    assert len(firsts) == len(set(firsts)), names  # no plain file beside its sealed one
    sealed = json.loads((tmp_path / "ledger" / "sealed.json").read_text())
    assert sorted(s["file"] for s in sealed) == [n for n in names if n.endswith(".zst")]
    if copy:
        assert all((store / s["blob"].split(":")[1]).exists() for s in sealed)
    else:
        assert all(s["blob"] is None for s in sealed) and not any(store.iterdir())
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made
    assert reader.verify(blob_exists=lambda b: (store / b.split(":")[1]).exists()) == []


def test_a_sealed_file_rewritten_with_the_same_entries_is_not_its_blob(sealed_ledger, monkeypatch):
    tmp_path, made, store = sealed_ledger
    first = _segments(tmp_path)[0]
    entries = sealed_entries(first.read_bytes(), first.name)
    monkeypatch.setattr(fmt, "LEVEL", 1)
    first.write_bytes(
        fmt.encode_sealed(1, [stored_fields(e) + b"\n" for e in entries], [e.prev for e in entries])
    )
    reader = open_ledger(tmp_path, writable=False)
    assert [e.to_json() for e in reader.entries()] == made  # the same entries, other bytes
    problems = reader.verify(blob_exists=store.__contains__)
    assert [p.where for p in problems] == [f"sealed segment {first.name}"], problems
    assert "differs from its copy in the store" in problems[0].what
