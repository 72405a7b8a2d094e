"""One contract, two backends: the local directory and S3 over HTTP (moto_server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.store.backends.base import BackendUnavailable, ObjectMissing
from vault.store.backends.local import LocalBackend
from vault.store.backends.s3 import S3Backend
from vault.testing.net import free_port


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request, tmp_path):
    if request.param == "local":
        return LocalBackend(tmp_path / "blobs")
    endpoint, bucket = request.getfixturevalue("s3_bucket")
    return S3Backend(
        bucket=bucket,
        endpoint_url=endpoint.url,
        region=endpoint.region,
        access_key_id=endpoint.access_key_id,
        secret_access_key=endpoint.secret_access_key,
        prefix="vault",
    )


def test_put_get_range_size(backend):
    assert backend.put("packs/ab/one", b"0123456789") is True
    assert backend.get("packs/ab/one") == b"0123456789"
    assert backend.get_range("packs/ab/one", 3, 4) == b"3456"
    assert backend.size("packs/ab/one") == 10
    assert backend.exists("packs/ab/one") and not backend.exists("packs/ab/two")


def test_put_never_overwrites_and_is_idempotent(backend):
    assert backend.put("index/x", b"first") is True
    assert backend.put("index/x", b"second") is False
    assert backend.get("index/x") == b"first"


def test_list_is_sorted_and_prefixed(backend):
    for key in ("packs/bb/2", "packs/aa/1", "index/1", "packs/aa/0"):
        backend.put(key, key.encode())
    assert list(backend.list("packs/")) == ["packs/aa/0", "packs/aa/1", "packs/bb/2"]
    assert list(backend.list("index/")) == ["index/1"]


def test_missing_and_delete(backend):
    with pytest.raises(ObjectMissing):
        backend.get("nope")
    with pytest.raises(ObjectMissing):
        backend.size("nope")
    backend.put("gone", b"x")
    backend.delete("gone")
    assert not backend.exists("gone")
    with pytest.raises(ObjectMissing):
        backend.delete("gone")


@pytest.mark.s3
def test_only_a_local_directory_shares_a_disk_with_a_home(backend, tmp_path):
    """What decides whether sealed ledger segments are copied into the store (archive._sealer):
    a copy on the ledger's own file system is no second copy; one off this host always is."""
    local = isinstance(backend, LocalBackend)
    assert backend.on_the_disk_of(tmp_path / "home" / "ledger") is local  # not made yet: its parent's
    assert backend.on_the_disk_of(tmp_path) is local
    assert backend.on_the_disk_of(Path("/proc/self")) is False  # another file system


def test_dead_endpoint_is_reported_as_unavailable():
    dead = S3Backend(
        bucket="b", endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id="x", secret_access_key="y"
    )
    with pytest.raises(BackendUnavailable):
        dead.get("anything")
