"""The end-to-end story through the real pipeline: Cyrus -> dealer (stream) -> broker ->
workers <-> collector, each its own process; then the changelog and point-in-time restores."""
from __future__ import annotations

import pytest

from tests.ingest.e2e.scenario import check_changelog, check_restore, tell

pytestmark = pytest.mark.cyrus


def test_story_through_the_pipeline(tmp_path, pipeline_factory):
    pipeline = pipeline_factory(workers=2)
    story = tell(pipeline.cyrus)
    pipeline.wait_settled()
    assert pipeline.job_counts().get("FAILED", 0) == 0, pipeline.vaultctl("retry", "--list").stdout
    check_changelog(pipeline.home, story)
    check_restore(pipeline.home, pipeline.cyrus, story, tmp_path)
