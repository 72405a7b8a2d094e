"""The committer's check of a worker's result against its job's event, and the event wire's
refusals (vault/ingest/broker/validate.py), through its Python API on a real (empty) vault's
catalog. What the handlers produce for real Cyrus events passes it: every LiveArchive test
(tests/ingest/worker/live.py) runs it and fails on a refusal."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.core.helpers import init_vault
from vault.archive import Vault
from vault.config import Config
from vault.entries import EntrySpec, Kind
from vault.ingest.broker.jobs import FAILED, PENDING, REFUSED, JobStore
from vault.ingest.broker.validate import NEVER_FROM_WORKERS, RULES, Invalid, ResultCheck, refusal
from vault.ingest.protocol import decode_result
from vault.ingest.worker.handlers import ALIASES, HANDLERS

BOX = "fngchpsey72ifuhlby002uup"
EXPUNGE = {
    "event": "MessageExpunge",
    "timestamp": "2026-11-22T12:55:09.120Z",
    "mailboxID": BOX,
    "uri": "imap://feas.local/user/alice;UIDVALIDITY=1795352107",
    "uidset": "3:5,9",
    "user": "alice",
}
WHEN = "2026-11-22T12:55:09.120000Z"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    home = init_vault(tmp_path_factory.mktemp("v") / "vault")
    with Vault.open(Config.load(home)) as vault:
        yield vault.catalog


def expunge(uid: int, *, box: str = BOX, uidvalidity: int = 1795352107, **kw) -> EntrySpec:
    fields = {"time": WHEN, "actor": "alice", **kw}
    data = {"mailbox": "user/alice", "cyrus_event": "MessageExpunge", **fields.pop("data", {})}
    return EntrySpec(Kind.MESSAGE_EXPUNGED, f"{box}:{uidvalidity}:{uid}", data, **fields)


def check(event: dict, entries: list[EntrySpec], catalog, resolve=None) -> list[EntrySpec]:
    raw = json.dumps(event).encode()
    return ResultCheck(resolve)(hashlib.sha256(raw).hexdigest(), raw, entries, catalog)


def test_one_rule_per_handler_and_no_worker_records_an_administrative_entry():
    assert set(RULES) == set(HANDLERS)
    assert set(ALIASES.values()) <= set(RULES)
    administrative = {
        Kind.RETENTION_PURGED,
        Kind.ERASURE,
        Kind.HOLD_PLACED,
        Kind.HOLD_RELEASED,
        Kind.SWEEP_REQUESTED,
        Kind.SEARCH_RUN,
        Kind.EXPORT_MADE,
        Kind.RESTORE_DONE,
        Kind.IMPORT_RUN,
        Kind.ACCESS_REFUSED,
        Kind.ERASURE_REQUESTED,
        Kind.ERASURE_WITHDRAWN,
        Kind.RELEASE_REQUESTED,
        Kind.RELEASE_WITHDRAWN,
        Kind.RECONCILE_DIFFERENCE,
        Kind.MAIL_READ,
        Kind.REVIEW_TAGGED,
    }
    assert NEVER_FROM_WORKERS == administrative


def test_what_the_event_names_is_stamped_with_its_time_and_job(catalog):
    entries = [expunge(uid, time=None if uid == 9 else WHEN) for uid in (3, 4, 5, 9)]
    checked = check(EXPUNGE, entries, catalog)
    raw = json.dumps(EXPUNGE).encode()
    assert [e.item.rsplit(":", 1)[1] for e in checked if e.item] == ["3", "4", "5", "9"]
    assert {(e.time, e.actor, e.data["event"]) for e in checked} == {
        (WHEN, "alice", hashlib.sha256(raw).hexdigest())
    }


@pytest.mark.parametrize(
    "entry, why",
    [
        (expunge(6), "UID 6 is not in the event's uidset 3:5,9"),
        (expunge(3, box="kb59j0n625lc27o074ihfn0y"), "not in the event's folder"),
        (expunge(3, uidvalidity=1), "UIDVALIDITY 1 is not the folder's 1795352107"),
        (
            expunge(3, time="2020-01-01T00:00:00.000000Z"),
            "dated 2020-01-01T00:00:00.000000Z, not the event's",
        ),
        (expunge(3, actor="general-counsel"), "actor 'general-counsel' is not the event's (alice)"),
        (expunge(3, actor=None), "actor None"),
        (expunge(3, data={"event": "f" * 64}), "names event 'ffff"),
        (expunge(3, data={"cyrus_event": "MessageNew"}), "came of 'MessageNew'"),
        (
            EntrySpec(Kind.FLAGS_SET, f"{BOX}:1795352107:3", {}, WHEN, "alice"),
            "MessageExpunge causes no flags.set",
        ),
        (EntrySpec(Kind.FOLDER_DELETED, BOX, {}, WHEN, "alice"), "causes no folder.deleted"),
        (EntrySpec(Kind.RETENTION_PURGED, f"{BOX}:1795352107:3", {}, WHEN, "alice"), "never a worker's"),
        (EntrySpec(Kind.MESSAGE_EXPUNGED, BOX, {}, WHEN, "alice"), "not a message item"),
    ],
)
def test_anything_else_is_refused_whole_with_the_reason(catalog, entry, why):
    with pytest.raises(Invalid, match=None) as refused:
        check(EXPUNGE, [expunge(3), entry], catalog)
    assert why in str(refused.value) and "entry 2 of 2" in str(refused.value)


ITEM = f"{BOX}:1795352107:3"


@pytest.mark.parametrize(
    "entry, why",
    [
        ({"kind": ["message.expunged"], "item": ITEM}, "its kind is not a kind"),
        ({"kind": "message.expunged", "item": {"a": 1}}, "its item is not a string"),
        ({"kind": "message.expunged", "item": ITEM, "data": [1]}, "its data is not an object"),
        ({"kind": "message.expunged", "item": ITEM, "actor": ["alice"]}, "its actor is not"),
        ({"kind": "message.expunged", "item": "x" * 5000}, "its item is not a string (of at most 1024"),
    ],
)
def test_what_is_not_an_entry_is_refused_too(catalog, entry, why):
    """As a worker's DONE carries them (vault/ingest/protocol.py decodes whatever JSON it is)."""
    [spec] = decode_result(json.dumps({"entries": [{"time": WHEN, "actor": "alice", **entry}]}).encode())
    with pytest.raises(Invalid, match=re.escape(why)):
        check(EXPUNGE, [spec], catalog)


def test_a_folder_first_seen_takes_its_uidvalidity_from_its_discovery(catalog):
    new = {
        "event": "MessageNew",
        "timestamp": "2026-11-22T12:55:10.000Z",
        "mailboxID": BOX,
        "uri": "imap://feas.local/user/alice/;UID=7",  # no UIDVALIDITY: the server's, discovered
        "user": "alice",
    }
    when = "2026-11-22T12:55:10.000000Z"
    found = EntrySpec(Kind.FOLDER_CREATED, BOX, {"name": "user/alice", "uidvalidity": 42}, when, "alice")
    appended = EntrySpec(Kind.MESSAGE_APPENDED, f"{BOX}:42:7", {"blob": "sha256:" + "0" * 64}, when, "alice")
    assert len(check(new, [found, appended], catalog)) == 2
    with pytest.raises(Invalid, match="UIDVALIDITY 43 is not the folder's 42"):
        check(new, [found, EntrySpec(Kind.MESSAGE_APPENDED, f"{BOX}:43:7", {}, when, "alice")], catalog)
    with pytest.raises(Invalid, match="UID 8 is not the event's 7"):
        check(new, [found, EntrySpec(Kind.MESSAGE_APPENDED, f"{BOX}:42:8", {}, when, "alice")], catalog)


def test_users_by_directory_id_as_the_workers_resolve_them(catalog):
    ids = {"alice": "5f0c-alice-uuid"}
    resolve = ids.__getitem__
    for actor in ("alice", "5f0c-alice-uuid"):
        assert check(EXPUNGE, [expunge(3, actor=actor)], catalog, resolve)
    with pytest.raises(Invalid, match="is not the event's"):
        check(EXPUNGE, [expunge(3, actor="5f0c-bob-uuid")], catalog, resolve)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b'{"event": "MessageNew", "uri": ', "its event cannot be read"),
        (
            json.dumps({"event": "vnd.vault.Audit", "kind": "hold.released"}).encode(),
            "no event type a worker",
        ),
        (json.dumps({**EXPUNGE, "timestamp": "yesterday"}).encode(), "bad timestamp"),
    ],
)
def test_a_result_for_an_event_no_worker_can_handle_is_refused(catalog, raw, why):
    with pytest.raises(Invalid, match=why):
        ResultCheck()(hashlib.sha256(raw).hexdigest(), raw, [], catalog)


def test_the_event_wire_refuses_requests_and_made_up_ids(tmp_path):
    raw = json.dumps({"event": "vnd.vault.Audit", "kind": "retention.sweep_requested"}).encode()
    eid = hashlib.sha256(raw).hexdigest()
    assert refusal(eid, eid, "MessageNew") is None
    assert "administrative request" in (refusal(eid, eid, "vnd.vault.Audit") or "")
    assert "not the SHA-256 of its bytes" in (refusal(eid, "0" * 64, "MessageNew") or "")
    jobs = JobStore(tmp_path / "jobs.sqlite")
    ok = json.dumps({"event": "FlagsSet", "mailboxID": BOX}).encode()
    assert jobs.add_many(
        [(eid, raw, "h"), (hashlib.sha256(ok).hexdigest(), ok, "h")],
        refuse=lambda n, name: refusal(eid, eid, name) if n == 0 else None,
    ) == [True, True]
    refused = jobs.get(eid)
    assert refused is not None and refused.state == FAILED and (refused.reason or "").startswith(REFUSED)
    assert [j.id for j in jobs.dispatchable(10)] == [hashlib.sha256(ok).hexdigest()]
    assert jobs.retry() == 0 and jobs.retry([eid]) == 0  # evidence, never work
    jobs.fail(hashlib.sha256(ok).hexdigest(), "collector down")
    assert jobs.retry() == 1 and jobs.counts()[PENDING] == 1
