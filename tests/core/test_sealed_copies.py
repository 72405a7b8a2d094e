"""Where a home keeps its sealed ledger segments: once, under ledger/segments, when the blob
store is a local directory on the same disk; copied into the store when it is elsewhere."""

from __future__ import annotations

import json

import pytest

from tests.core.helpers import init_s3_vault, init_vault, vaultctl_run, write_maildir
from vault.archive import Vault
from vault.config import Config
from vault.model import blob_id


def _import(tmp_path, home, n=60):
    box = write_maildir(
        tmp_path / "box",
        {
            f"{i}.test:2,S": f"From: a{i}@example.org\r\nSubject: m {i}\r\n\r\nbody {i}\r\n".encode()
            for i in range(n)
        },
    )
    r = vaultctl_run(home, "import", str(box), "--mailbox", "user/a/INBOX")
    assert r.code == 0, r


def _sealed(home):
    listed = json.loads((home / "ledger" / "sealed.json").read_text())
    files = sorted((home / "ledger" / "segments").glob("*.jsonl.zst"))
    assert listed and [s["file"] for s in listed] == [f.name for f in files]
    return listed, files


def test_a_local_store_on_the_ledgers_disk_gets_no_copy_of_sealed_segments(tmp_path):
    home = init_vault(tmp_path / "home", **{"ledger.segment_max_bytes": 2048})
    _import(tmp_path, home)
    listed, files = _sealed(home)
    assert all(s["blob"] is None for s in listed)
    with Vault.open(Config.load(home)) as vault:
        assert not any(vault.store.exists(blob_id(f.read_bytes())) for f in files)
        assert vault.ledger.sealed_blobs() == []
    r = vaultctl_run(home, "verify")
    assert r.code == 0, r


@pytest.mark.s3
def test_an_s3_store_gets_each_sealed_segment_and_verify_checks_the_copy(tmp_path, s3_endpoint):
    home = init_s3_vault(tmp_path / "home", s3_endpoint, s3_endpoint.new_bucket())
    text = (
        (home / "config.toml").read_text().replace("segment_max_bytes = 262144", "segment_max_bytes = 2048")
    )
    (home / "config.toml").write_text(text)
    _import(tmp_path, home)
    listed, files = _sealed(home)
    assert [s["blob"] for s in listed] == [blob_id(f.read_bytes()) for f in files]
    with Vault.open(Config.load(home)) as vault:
        assert all(vault.store.get(s["blob"]) == f.read_bytes() for s, f in zip(listed, files))
    assert vaultctl_run(home, "verify").code == 0
    files[0].write_bytes(files[0].read_bytes()[:-1] + b"!")  # the home's file no longer its copy
    r = vaultctl_run(home, "verify")
    assert r.code != 0 and "differs from its copy in the store" in r.err, r
