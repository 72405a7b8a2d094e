"""Four eyes: an erasure or a hold release is requested by one admin and approved by another;
refusals are ledger entries; approvals re-evaluate (holds win); requests expire.

The tests run as root, the first admin, who goes through vaultctl; the second admin, ann,
goes through the engine API with a Caller from vault.identity.caller_of (the vault's
[roles] admins = ["root", "ann"]), so no second OS user is needed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.core.helpers import init_vault, make_maildir, vaultctl_run
from tests.fixtures.corpus import message_files
from tests.policy.helpers import (
    SECOND_ADMIN,
    TWO_ADMINS,
    approve_erasure_as,
    approve_release_as,
    as_login,
    ledger_entries,
    release,
    request_id,
)
from vault.archive import Vault
from vault.config import Config
from vault.identity import Forbidden
from vault.model import now
from vault.policy import approval
from vault.policy.approval import ERASURE, RELEASE, RequestError
from vault.policy.erase import ErasureRefused, approve_erasure, request_erasure
from vault.policy.holds import HoldError
from vault.policy.place import approve_release, request_release


@pytest.fixture
def home(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault", **TWO_ADMINS)
    ham = message_files(spamassassin_dir / "easy-ham-1")
    for user, files in (("jane", ham[:5]), ("bob", ham[5:8])):
        box = make_maildir(tmp_path / user, files)
        assert vaultctl_run(home, "import", str(box), "--mailbox", f"user/{user}/INBOX").code == 0
    return home


def _size(home) -> int:
    return json.loads(vaultctl_run(home, "status", "--json").out)["ledger_entries"]


def _count(home, query: str) -> int:
    return json.loads(vaultctl_run(home, "search", query, "--json").out)["total"]


def _refusals(home) -> list:
    return ledger_entries(home, "access.refused")


def _writer(home):
    return Vault.open(Config.load(home), writer=True)


# ---------------------------------------------------------------- erasure


def test_erasure_dry_run_request_self_approval_refused_then_another_admin_approves(home):
    before = _size(home)
    dry = vaultctl_run(home, "erase", "--custodian", "jane", "--dry-run")
    assert dry.code == 0, dry
    assert dry.out.count("user/jane ") == 5 and "nothing recorded" in dry.out
    assert _size(home) == before  # a dry run changes nothing

    missing = vaultctl_run(home, "erase", "--custodian", "jane")
    assert missing.code != 0 and "needs --reason" in missing.err

    unconfirmed = vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR art. 17 ticket 123")
    assert (
        unconfirmed.code == 1 and "stdin is not a terminal" in unconfirmed.err and "--yes" in unconfirmed.err
    )
    assert unconfirmed.err.count("  user/jane  ") == 5  # what it would cover, listed first
    assert _size(home) == before  # nothing recorded
    asked = vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "GDPR art. 17 ticket 123", "--yes")
    assert asked.code == 0, asked
    rid = asked.out.split()[2]
    assert rid.startswith("er-") and len(rid) == 11 and f"vaultctl erase approve {rid}" in asked.out
    assert "covers 5 item(s)" in asked.out
    listed = json.loads(vaultctl_run(home, "erase", "requests", "--json").out)
    assert [(r["request"], r["state"], r["requested_by"], len(r["covers"]["items"])) for r in listed] == [
        (rid, "pending", "root", 5)
    ]
    assert listed[0]["reason"] == "GDPR art. 17 ticket 123"

    own = vaultctl_run(home, "erase", "approve", rid, "--yes")
    assert own.code != 0
    assert f"root may not approve erasure request {rid}: it is their own request" in own.err
    [refusal] = _refusals(home)
    assert (refusal.actor, refusal.item) == ("root", rid)
    assert refusal.data["why"] == "it is their own request (another admin must approve it)"
    assert refusal.data["action"] == f"approve erasure request {rid}" and refusal.data["roles"] == [
        "admin",
        "user",
    ]
    assert _count(home, "custodian:jane") == 5  # nothing erased

    cert = approve_erasure_as(home, rid)
    assert len(cert["items"]) == 5 and cert["request"] == rid
    assert (cert["requested_by"], cert["reason"], cert["already_gone"]) == (
        "root",
        "GDPR art. 17 ticket 123",
        [],
    )
    [certified] = ledger_entries(home, "erasure.certified")
    assert (certified.actor, certified.item) == (SECOND_ADMIN, rid)
    purges = ledger_entries(home, "retention.purged")
    assert len(purges) == 5 and {p.actor for p in purges} == {SECOND_ADMIN}
    assert _count(home, "custodian:jane") == 0 and _count(home, "custodian:bob") == 3
    assert json.loads(vaultctl_run(home, "erase", "requests", "--json").out) == []
    done = json.loads(vaultctl_run(home, "erase", "requests", "--all", "--json").out)
    assert [(r["state"], r["closed_by"]) for r in done] == [("approved", SECOND_ADMIN)]
    with pytest.raises(RequestError, match=f"erasure request {rid} was approved by ann at"):
        approve_erasure_as(home, rid)  # once
    assert vaultctl_run(home, "verify", "--read-data").code == 0


def test_the_approval_erases_what_was_requested_and_holds_still_win(home, tmp_path, spamassassin_dir):
    rid = request_id(vaultctl_run(home, "erase", "--custodian", "jane", "--reason", "r", "--json", "--yes"))
    # mail that arrives after the request is not covered by it
    later = make_maildir(tmp_path / "later", message_files(spamassassin_dir / "easy-ham-1")[10:12])
    assert vaultctl_run(home, "import", str(later), "--mailbox", "user/jane/Later").code == 0
    # a hold placed after the request wins at the approval: refused, named, recorded
    assert vaultctl_run(home, "hold", "create", "case-9", "--custodian", "jane", "--reason", "r").code == 0
    with pytest.raises(ErasureRefused, match="held by case-9"):
        approve_erasure_as(home, rid)
    [refusal] = _refusals(home)
    assert refusal.actor == SECOND_ADMIN and "case-9" in refusal.data["why"]
    assert _count(home, "custodian:jane") == 7
    # still pending: approvable once the hold is released (four eyes too)
    release(home, "case-9")
    cert = approve_erasure_as(home, rid)
    assert len(cert["items"]) == 5
    assert _count(home, "custodian:jane") == 2  # the two that came later stay


def test_a_request_under_hold_is_refused_and_the_dry_run_says_why(home):
    assert vaultctl_run(home, "hold", "create", "m-1", "--custodian", "bob", "--reason", "r").code == 0
    dry = vaultctl_run(home, "erase", "--custodian", "bob", "--dry-run")
    assert dry.code != 0 and "held by m-1" in dry.err
    assert _refusals(home) == []  # a dry run records nothing
    refused = vaultctl_run(home, "erase", "--custodian", "bob", "--reason", "r", "--yes")
    assert refused.code != 0 and "held by m-1" in refused.err
    [refusal] = _refusals(home)
    assert refusal.data["action"] == "request an erasure for custodian bob"
    assert ledger_entries(home, "erasure.requested") == []
    nothing = vaultctl_run(home, "erase", "--custodian", "nobody", "--reason", "r", "--yes")
    assert nothing.code != 0 and "nothing to erase" in nothing.err


def test_only_admins_request_or_approve_and_each_refusal_is_recorded(home):
    config = Config.load(home)
    jane = as_login(home, "jane")
    with _writer(home) as vault:
        with pytest.raises(Forbidden, match="jane may not request an erasure: needs the admin role"):
            request_erasure(vault, jane, "bob", reason="revenge")
        with pytest.raises(Forbidden, match="jane may not request the release of hold"):
            request_release(vault, jane, "m", reason="r")
        rid = request_erasure(vault, as_login(home, "root"), "bob", reason="r").id
        assert rid is not None
        with pytest.raises(Forbidden, match=f"jane may not approve erasure request {rid}"):
            approve_erasure(vault, jane, rid)
        with pytest.raises(Forbidden, match="only its requester \\(root\\) may withdraw it"):
            approval.withdraw(vault, ERASURE, jane, rid)
    refusals = _refusals(home)
    assert [(r.actor, r.data["login"], r.data["roles"]) for r in refusals] == [("jane", "jane", ["user"])] * 4
    assert [r.data["action"] for r in refusals] == [
        "request an erasure",
        "request the release of hold 'm'",
        f"approve erasure request {rid}",
        f"withdraw erasure request {rid}",
    ]
    assert all("needs the admin role" in r.data["why"] for r in refusals[:3])
    assert config["roles"]["admins"] == ["root", SECOND_ADMIN]


def test_whom_a_request_was_made_for_does_not_approve_it(home):
    rid = request_id(
        vaultctl_run(
            home, "erase", "--custodian", "bob", "--reason", "r", "--actor", "ann", "--json", "--yes"
        )
    )
    with pytest.raises(Forbidden, match="it was made for them by root"):
        approve_erasure_as(home, rid)
    [asked] = ledger_entries(home, "erasure.requested")
    assert (asked.actor, asked.data["on_behalf_of"]) == ("root", SECOND_ADMIN)


def test_the_requester_withdraws_and_a_withdrawn_request_cannot_be_approved(home):
    rid = request_id(vaultctl_run(home, "erase", "--custodian", "bob", "--reason", "r", "--json", "--yes"))
    with _writer(home) as vault, pytest.raises(Forbidden, match="only its requester"):
        approval.withdraw(vault, ERASURE, as_login(home), rid)  # ann did not ask
    gone = vaultctl_run(home, "erase", "withdraw", rid)
    assert gone.code == 0 and "withdrawn" in gone.out, gone
    with pytest.raises(RequestError, match=f"erasure request {rid} was withdrawn by root"):
        approve_erasure_as(home, rid)
    assert [r.data["why"] for r in _refusals(home)][-1].startswith(f"erasure request {rid} was withdrawn")
    assert json.loads(vaultctl_run(home, "erase", "requests", "--json").out) == []
    assert _count(home, "custodian:bob") == 3
    unknown = vaultctl_run(home, "erase", "approve", "er-nosuchid", "--yes")
    assert unknown.code != 0 and "no request 'er-nosuchid'" in unknown.err
    hold_id = vaultctl_run(home, "hold", "approve", rid)
    assert hold_id.code != 0 and f"{rid} is a request for erasure" in hold_id.err


def test_a_request_expires(home):
    (home / "config.toml").write_text(
        (home / "config.toml").read_text().replace('request_expiry = "7d"', 'request_expiry = "2d"')
    )
    rid = request_id(vaultctl_run(home, "erase", "--custodian", "bob", "--reason", "r", "--json", "--yes"))
    with _writer(home) as vault:
        [pending] = approval.requests_of(vault, ERASURE)
        assert pending.expires_at - pending.requested_at == timedelta(days=2)
        later = now() + timedelta(days=2, seconds=1)
        assert approval.requests_of(vault, ERASURE, now=later) == []
        [expired] = approval.requests_of(vault, ERASURE, now=later, everything=True)
        assert expired.state == "expired"
        with pytest.raises(RequestError, match=f"erasure request {rid} expired at"):
            approve_erasure(vault, as_login(home), rid, now=later)
        approve_erasure(vault, as_login(home), rid, now=now() + timedelta(days=1))  # in time
    assert _count(home, "custodian:bob") == 0
    assert "expired" in _refusals(home)[0].data["why"]


# ---------------------------------------------------------------- hold release


def test_hold_release_request_self_approval_refused_then_another_admin_releases(home):
    assert vaultctl_run(home, "hold", "create", "case-1", "--custodian", "jane", "--reason", "lit").code == 0
    before = _size(home)
    dry = vaultctl_run(home, "hold", "release", "case-1", "--dry-run")
    assert dry.code == 0 and '"matter": "case-1"' in dry.out and "nothing recorded" in dry.out, dry
    assert _size(home) == before
    asked = vaultctl_run(home, "hold", "release", "case-1", "--reason", "matter settled")
    assert asked.code == 0, asked
    rid = asked.out.split()[2]
    assert rid.startswith("hr-") and f"vaultctl hold approve {rid}" in asked.out
    twice = vaultctl_run(home, "hold", "release", "case-1", "--reason", "again")
    assert twice.code != 0 and f"already requested: {rid} by root" in twice.err
    listed = json.loads(vaultctl_run(home, "hold", "requests", "--json").out)
    assert [(r["request"], r["covers"]["matter"], r["reason"]) for r in listed] == [
        (rid, "case-1", "matter settled")
    ]

    own = vaultctl_run(home, "hold", "approve", rid)
    assert own.code != 0 and f"root may not approve hold release request {rid}: it is their own" in own.err
    [refusal] = _refusals(home)
    assert refusal.actor == "root" and refusal.item == rid
    active = json.loads(vaultctl_run(home, "hold", "list", "--json").out)
    assert [h["matter"] for h in active] == ["case-1"]  # still held

    change = approve_release_as(home, rid)
    assert change.how == "recorded" and change.hold.released_by == SECOND_ADMIN
    [released] = ledger_entries(home, "hold.released")
    assert (released.actor, released.item) == (SECOND_ADMIN, rid)
    assert (released.data["requested_by"], released.data["release_reason"]) == ("root", "matter settled")
    assert json.loads(vaultctl_run(home, "hold", "list", "--json").out) == []
    done = json.loads(vaultctl_run(home, "hold", "requests", "--all", "--json").out)
    assert [(r["state"], r["closed_by"]) for r in done] == [("approved", SECOND_ADMIN)]


def test_a_withdrawn_release_can_be_asked_again_and_either_admin_may_ask(home):
    assert vaultctl_run(home, "hold", "create", "m", "--custodian", "jane", "--reason", "r").code == 0
    with _writer(home) as vault:
        dry = request_release(vault, as_login(home), "m", reason="", dry_run=True)
        assert dry.id is None and dry.hold is not None and dry.hold.matter == "m"
    rid = request_id(vaultctl_run(home, "hold", "release", "m", "--reason", "r", "--json"))
    with _writer(home) as vault:
        with pytest.raises(HoldError, match="no active hold named 'x'"):
            request_release(vault, as_login(home), "x", reason="r")
        with pytest.raises(HoldError, match=f"already requested: {rid}"):
            request_release(vault, as_login(home), "m", reason="", dry_run=True)
        with pytest.raises(Forbidden, match="only its requester"):
            approval.withdraw(vault, RELEASE, as_login(home), rid)
    assert vaultctl_run(home, "hold", "withdraw", rid).code == 0
    with _writer(home) as vault:
        asked = request_release(vault, as_login(home), "m", reason="ann asks")  # ann asks, root approves
        assert asked.id is not None
        with pytest.raises(Forbidden, match="their own request"):
            approve_release(vault, as_login(home), asked.id)
        approve_release(vault, as_login(home, "root"), asked.id)
        states = [(r.state, r.actor) for r in approval.requests_of(vault, RELEASE, everything=True)]
    assert states == [("withdrawn", "root"), ("approved", SECOND_ADMIN)]
    assert json.loads(vaultctl_run(home, "hold", "list", "--json").out) == []
    [released] = ledger_entries(home, "hold.released")
    assert (released.actor, released.data["released_by"], released.data["requested_by"]) == (
        "root",
        "root",
        SECOND_ADMIN,
    )


def test_a_refusal_stands_when_it_cannot_be_recorded(home):
    # another writer holds the vault and no broker takes the entry: still refused, saying so
    jane = as_login(home, "jane")
    with _writer(home), Vault.open(Config.load(home)) as reader:
        with pytest.raises(Forbidden) as refused:
            request_erasure(reader, jane, "bob", reason="r")
    assert "jane may not request an erasure" in str(refused.value)
    assert "the refusal could not be recorded" in str(refused.value)
    assert _refusals(home) == []
