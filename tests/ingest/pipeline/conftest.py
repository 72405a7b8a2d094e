"""A real Cyrus in stream mode feeding the whole pipeline (dealer, broker, workers, collector)
run as separate ``vaultctl`` processes on one vault."""

from __future__ import annotations

import shutil

import pytest

from vault.testing.cli import REPO, vaultctl
from vault.testing.cyrus_server import new_base_dir
from vault.testing.pipeline import Pipeline


@pytest.fixture
def pipeline_factory(tmp_path, cyrus_factory):
    """``make(workers=2, mode="stream", start=True, **cyrus_kwargs) -> Pipeline`` over a fresh
    Cyrus; in ``external`` mode with the /bin/sh hook spooling for the dealer to ship."""
    made: list[Pipeline] = []
    dirs = []

    def make(workers: int = 2, mode: str = "stream", start: bool = True, **cyrus) -> Pipeline:
        base = new_base_dir("spool")
        base.chmod(0o755)
        dirs.append(base)
        spool = base / "spool"
        if mode == "external":
            hook = base / "notify-hook"
            done = vaultctl(
                None,
                "dealer",
                "install-hook",
                "--spool",
                spool,
                "--output",
                hook,
                "--owner",
                "cyrus",
                cwd=REPO,
            )
            assert done.returncode == 0, done.stderr
            server = cyrus_factory(mode=mode, notify_target=hook, **cyrus)
        else:
            server = cyrus_factory(mode=mode, **cyrus)
        pipeline = Pipeline(tmp_path / f"vault{len(made)}", server, spool, workers=workers)
        made.append(pipeline)
        return pipeline.start() if start else pipeline

    yield make
    for pipeline in made:
        pipeline.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
