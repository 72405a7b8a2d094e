"""The end-to-end story with the handlers applied in-process (as the broker's committer
will): every event a real Cyrus emitted, handled through the collector into a real vault;
then the changelog and point-in-time restores to maildir: and into the real Cyrus."""

from __future__ import annotations

import pytest

from tests.ingest.e2e.scenario import check_changelog, check_restore, tell
from tests.ingest.worker.live import LiveArchive, quiet, wait_for_event

pytestmark = pytest.mark.cyrus


def test_story_in_process(tmp_path, cyrus_factory):
    server = cyrus_factory()
    archive = LiveArchive(tmp_path / "vault", server)
    try:
        story = tell(server)
        wait_for_event(server, lambda e: e["event"] == "Logout" and e.get("user") == "alice")
        quiet(server)
        archive.feed_new_hook_events()
        assert archive.quarantined == [] and archive.postponed == []
        with archive.released():
            check_changelog(archive.home, story)
            check_restore(archive.home, server, story, tmp_path)
    finally:
        archive.close()
