"""verify detects every kind of tampering with a copy of a real vault, and names it."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from tests.core.helpers import init_vault, maildir_file, make_maildir, set_maildir_flags
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run


def _segment_files(home):
    """Plain ledger segment files: one line per entry, after a header line in format 2."""
    return sorted((home / "ledger" / "segments").glob("*.jsonl"))


def _lines(home):
    """The last plain segment, its header (a list of at most one line) and its entry lines."""
    seg = _segment_files(home)[-1]
    lines = seg.read_bytes().splitlines(keepends=True)
    head = lines[:1] if b'"ledger_segment"' in lines[0] else []
    return seg, head, lines[len(head) :]


def _pack_files(home):
    return sorted(
        p for p in (home / "blobs").rglob("*") if p.is_file() and "pack" in str(p.relative_to(home / "blobs"))
    )


@pytest.fixture(scope="module")
def real_vault(tmp_path_factory, spamassassin_dir):
    base = tmp_path_factory.mktemp("tamper")
    home = init_vault(base / "vault")
    box = make_maildir(base / "Maildir", message_files(spamassassin_dir / "spam-1")[:40])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    maildir_file(box, 3).unlink()
    set_maildir_flags(box, 4, ["\\Seen"])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    ok = vaultctl_run(home, "verify", "--read-data")
    assert ok.code == 0, ok
    return home


@pytest.fixture
def copy(real_vault, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(real_vault, target)
    return target


def _fails(home, *args) -> str:
    r = vaultctl_run(home, "verify", *args)
    assert r.code != 0, f"tampering went unnoticed: {r}"
    return r.err


def test_flip_a_byte_in_an_entry(copy):
    seg, head, lines = _lines(copy)
    line = bytearray(lines[10])
    i = line.index(b"sha256:") + 10
    line[i] = ord("0") if line[i] != ord("0") else ord("1")
    lines[10] = bytes(line)
    seg.write_bytes(b"".join(head + lines))
    err = _fails(copy)
    assert "entry 11" in err  # the first bad entry, by sequence number


def test_delete_an_entry(copy):
    seg, head, lines = _lines(copy)
    del lines[20]
    seg.write_bytes(b"".join(head + lines))
    assert "entry 21" in _fails(copy)


def test_swap_two_entries(copy):
    seg, head, lines = _lines(copy)
    lines[5], lines[6] = lines[6], lines[5]
    seg.write_bytes(b"".join(head + lines))
    assert "entry 6" in _fails(copy)


def test_truncate_the_tail(copy):
    seg, head, lines = _lines(copy)
    seg.write_bytes(b"".join(head + lines[:-3]))
    assert "truncated" in _fails(copy).lower()


def test_replace_a_blobs_bytes(copy):
    pack = random.Random(1).choice(_pack_files(copy))
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    err = _fails(copy, "--read-data")
    assert "sha256:" in err


def test_delete_a_blob(copy):
    pack = _pack_files(copy)[0]
    pack.unlink()
    err = _fails(copy)
    assert "sha256:" in err and "missing" in err.lower()


def test_sealed_segments_are_kept_once_in_the_home_and_checked(tmp_path, spamassassin_dir):
    """A local store on the home's disk gets no copy of a sealed segment (an S3 store does:
    tests/core/test_sealed_copies.py); the home's file is checked entry by entry."""
    home = init_vault(tmp_path / "vault", **{"ledger.segment_max_bytes": 4096})
    box = make_maildir(tmp_path / "Maildir", message_files(spamassassin_dir / "spam-1")[:30])
    for flags in ([], ["\\Seen"], ["\\Flagged"]):  # runs that each fill (and seal) a segment
        for n in range(30):
            set_maildir_flags(box, n, flags)
        assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    sealed = json.loads((home / "ledger" / "sealed.json").read_text())
    assert len(sealed) == 3 and all(s["blob"] is None for s in sealed)
    assert len({s["file"] for s in sealed}) == 3, "a sealed segment was appended to and sealed again"
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    assert json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    for pack in _pack_files(home):
        pack.unlink()
    r = vaultctl_run(home, "verify", "--json")
    assert r.code == 3  # only message blobs are missing: the ledger is whole without the store
    assert all(p["where"].startswith(("blob ", "pack ")) for p in json.loads(r.out)["problems"])
    seg = home / "ledger" / "segments" / sealed[1]["file"]
    data = bytearray(seg.read_bytes())
    data[len(data) // 3] ^= 0x01
    seg.write_bytes(bytes(data))
    r = vaultctl_run(home, "verify", "--json")
    assert r.code == 1
    assert any(seg.name in p["where"] for p in json.loads(r.out)["problems"])
