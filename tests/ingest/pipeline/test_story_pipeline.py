"""The end-to-end story through the real pipeline: Cyrus -> dealer (stream) -> broker ->
workers <-> collector, each its own process; then the changelog and point-in-time restores."""

from __future__ import annotations

import json

import pytest

from tests.ingest.e2e.scenario import check_changelog, check_restore, tell
from tests.policy.helpers import approve_release_as, ledger_entries
from vault.recording import Unrecorded

pytestmark = pytest.mark.cyrus


def test_story_through_the_pipeline(tmp_path, pipeline_factory):
    pipeline = pipeline_factory(workers=2)
    pipeline.wait_first_sync()  # the story's changelog is the live events', not the first sync's
    story = tell(pipeline.cyrus)
    pipeline.wait_settled()
    assert pipeline.job_counts().get("FAILED", 0) == 0, pipeline.vaultctl("retry", "--list").stdout
    check_changelog(pipeline.home, story)
    check_restore(pipeline.home, pipeline.cyrus, story, tmp_path)
    # both restores ran while the vault service held the vault: their audit entries went through it
    pipeline.wait_settled()
    restores = [
        e for e in json.loads(pipeline.vaultctl("audit", "--json").stdout) if e["kind"] == "restore.done"
    ]
    assert [(e["data"]["mailbox"], e["data"]["uid"]) for e in restores] == [
        ("user/alice/Project2", None),
        ("user/alice/Project2", 1),
    ]
    # so does a legal hold placed meanwhile: the service places it and says so
    placed = pipeline.vaultctl("hold", "create", "matter-1", "--custodian", "alice", "--reason", "litigation")
    assert placed.returncode == 0 and "placed on alice" in placed.stdout, placed.stderr
    pipeline.wait_settled()
    holds = json.loads(pipeline.vaultctl("hold", "list", "--json").stdout)
    assert [(h["matter"], h["custodians"]) for h in holds] == [("matter-1", ["alice"])]
    # live ingest indexes what it archives; a renamed folder is found by its old and new name
    for query in ("in:Project subject:appended", "in:Project2 subject:appended"):
        out = json.loads(pipeline.vaultctl("search", query, "--json").stdout)
        assert [h["subject"] for h in out["hits"]] == ["appended"], query
        assert "user/alice/Project2" in out["hits"][0]["folders"]  # (and Restored, where it was restored to)
    # a retention sweep asked for while the service holds the vault is run by it, with its
    # one writer, and its report comes back; the hold wins until it is released
    (pipeline.home / "policies").mkdir(exist_ok=True)
    (pipeline.home / "policies" / "all.toml").write_text(
        '[[rule]]\nname = "everything"\npurge_after = "1d"\n[rule.match]\nfolders = ["user/alice/**"]\n'
    )

    def sweep_through_service() -> list[dict]:
        r = pipeline.vaultctl("retention", "sweep", "--now", "2100-01-01T00:00Z", "--json", "--yes")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        purged = [
            e
            for e in json.loads(pipeline.vaultctl("audit", "--json").stdout)
            if e["kind"] == "retention.purged"
        ]
        assert len(report["purge"]) == len(purged) - already[0]
        already[0] = len(purged)
        return [
            e
            for e in json.loads(pipeline.vaultctl("audit", "--json").stdout)
            if e["kind"] == "retention.purged"
        ]

    already = [0]
    held = json.loads(pipeline.vaultctl("search", "custodian:alice", "--json").stdout)["total"]
    assert held > 0 and sweep_through_service() == []
    # releasing it takes two admins: root asks through vaultctl (the service records it); ann's
    # approval through the engine in a process of her own is refused while the service holds
    # the vault (nothing travels behind its back), and recorded with the home to herself
    pipeline.configure("roles", admins=["root", "ann"])
    asked = pipeline.vaultctl("hold", "release", "matter-1", "--reason", "settled", "--json")
    assert asked.returncode == 0 and json.loads(asked.stdout)["how"] == "recorded", asked.stderr
    pipeline.wait_settled()
    rid = json.loads(asked.stdout)["request"]
    own = pipeline.vaultctl("hold", "approve", rid)  # refused by the service, the refusal recorded
    assert own.returncode != 0 and "it is their own request" in own.stderr, own.stderr
    with pytest.raises(Unrecorded, match="the vault service .* holds the vault"):
        approve_release_as(pipeline.home, rid)
    assert json.loads(pipeline.vaultctl("hold", "list", "--json").stdout)[0]["matter"] == "matter-1"
    pipeline.components["broker"].stop()
    assert approve_release_as(pipeline.home, rid).how == "recorded"
    pipeline.start_broker()
    pipeline.wait_settled()
    refused = [e for e in ledger_entries(pipeline.home, "access.refused") if e.item == rid]
    assert [(e.actor, e.data["login"]) for e in refused] == [("root", "root")]
    purged = sweep_through_service()
    assert purged and all(e["actor"] for e in purged)
    assert json.loads(pipeline.vaultctl("search", "custodian:alice", "--json").stdout)["total"] == 0
