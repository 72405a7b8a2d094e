"""A real Cyrus in stream mode feeding the whole pipeline (dealer, broker, workers, collector)
run as separate ``vaultctl`` processes on one vault."""
from __future__ import annotations

import shutil

import pytest

from vault.testing.cyrus_server import new_base_dir
from vault.testing.pipeline import Pipeline


@pytest.fixture
def pipeline_factory(tmp_path, cyrus_factory):
    """``make(workers=2, mode="stream", start=True) -> Pipeline`` over a fresh Cyrus."""
    made: list[Pipeline] = []
    dirs = []

    def make(workers: int = 2, mode: str = "stream", start: bool = True) -> Pipeline:
        server = cyrus_factory(mode=mode)
        spool = new_base_dir("spool")
        spool.chmod(0o755)
        dirs.append(spool)
        pipeline = Pipeline(tmp_path / f"vault{len(made)}", server, spool / "spool", workers=workers)
        made.append(pipeline)
        return pipeline.start() if start else pipeline

    yield make
    for pipeline in made:
        pipeline.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
