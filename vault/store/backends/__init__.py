"""Blob-store backends behind one contract (base.Backend): local directory and S3."""

from __future__ import annotations

from vault.store.backends.base import Backend, StoreError


def open_backend(config) -> Backend:
    kind = config["store"]["backend"]
    if kind == "local":
        from vault.store.backends.local import LocalBackend

        return LocalBackend(config.path("store"))
    if kind == "s3":
        from vault.secrets import resolved
        from vault.store.backends.s3 import S3Backend

        return S3Backend(**resolved(config, "s3"))
    raise StoreError(f"unknown store backend {kind!r} (local or s3)")
