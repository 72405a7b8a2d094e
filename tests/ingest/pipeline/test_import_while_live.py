"""History back-filled while live ingest runs: the vault service holds the writer, so an import
of an old Maildir for a live user lands through it while deliveries continue; nothing
delivered is lost or doubled, and nothing imported collides with Cyrus's own numbering."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.core.helpers import write_maildir
from tests.ingest.pipeline.test_nothing_lost import Deliverer, appended_by_message_id, message

pytestmark = pytest.mark.cyrus

DELIVERIES = 200
HISTORY = 50


def test_an_import_lands_while_deliveries_continue(tmp_path, pipeline_factory):
    pipeline = pipeline_factory(workers=2, users=("alice",))
    tag = uuid.uuid4().hex[:8]
    live = [f"<{tag}-live-{i}@example.org>" for i in range(DELIVERIES)]
    old = [f"<{tag}-old-{i}@example.org>" for i in range(HISTORY)]
    history = write_maildir(tmp_path / "old-mail", {f"{i}.old:2,S": message(m) for i, m in enumerate(old)})
    deliverer = Deliverer(pipeline.cyrus, live, users=("alice",))
    deliverer.start()
    deliverer.wait_for(20)  # the live folder exists, deliveries go on

    refused = pipeline.vaultctl("import", str(history), "--mailbox", "user/alice")
    assert refused.returncode != 0
    assert "user/alice is a live Cyrus folder" in refused.stderr, refused.stderr
    done = pipeline.vaultctl("import", str(history), "--mailbox", "user/alice/Imported", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["appended"] == HISTORY
    assert deliverer.is_alive() or deliverer.delivered == DELIVERIES

    deliverer.join(600)
    assert deliverer.error is None, deliverer.error
    pipeline.wait_settled(seconds=300, quiet=2.0)
    found = appended_by_message_id(pipeline.home)
    assert [m for m in live + old if m not in found] == []
    assert {m: items for m, items in found.items() if len(items) > 1} == {}
    folders = {row["name"]: row["messages"] for row in json.loads(pipeline.vaultctl("ls", "--json").stdout)}
    assert folders["user/alice/Imported"] == HISTORY
    assert folders["user/alice"] == DELIVERIES
