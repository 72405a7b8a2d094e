"""Whoever reaches the broker's ports is not an administrator. A fake dealer on the dealer
port sends what used to be administrative requests (a hold released "by general-counsel",
backdated; a sweep as of 2099); a fake worker on the control port takes real jobs and
answers with forged entries (purges, an erasure certificate, a hold release, expunges dated
2020, other sessions, other users). Each attack changes nothing: the hold stays, every
message stays and restores, the vault verifies with every blob re-read, and the dead-letter
list says why. The jobs the fake worker spoiled are then done by a real worker: nothing is
lost. The real ``vaultctl serve``, the real CLI, the wire protocols written by hand."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest

from tests.ingest.broker.conftest import CUSTODIAN, FOLDER, MATTER, MESSAGES, Served
from tests.ingest.broker.wire import FakeDealer, FakeWorker, insider
from vault.ingest import protocol as p
from vault.ingest.broker.jobs import BUSY, DONE, FAILED


def login(session: str, timestamp: str = "2026-11-22T12:55:06.207Z", user: str = CUSTODIAN) -> bytes:
    """A Login notification as Cyrus 3.6 sends it (tests/data/cyrus/cyrus-events.jsonl)."""
    return json.dumps(
        {
            "event": "Login",
            "timestamp": timestamp,
            "service": "imap",
            "serverDomain": "127.0.0.1",
            "serverPort": 143,
            "clientIP": "192.0.2.7",
            "clientPort": 50000,
            "uri": "imap://vault.test",
            "pid": 4242,
            "user": user,
            "serverFQDN": "vault.test",
            "vnd.cmu.sessionId": session,
        }
    ).encode()


def audit_event(kind: str, data: dict, actor: str = "general-counsel") -> bytes:
    """What vault/recording.py used to put on the dealer wire for an administrative entry."""
    return json.dumps(
        {
            "event": "vnd.vault.Audit",
            "kind": kind,
            "item": None,
            "data": data,
            "actor": actor,
            "timestamp": "2020-01-01T00:00:00.000000Z",  # backdated
            "nonce": uuid.uuid4().hex,
        }
    ).encode()


def test_a_fake_dealer_cannot_release_a_hold_or_ask_for_a_sweep(served: Served, tmp_path):
    size = len(served.entries())
    served.start_worker()  # a real worker waits for jobs: none of these reaches it
    [hold] = served.json("hold", "list")
    released = {**hold, "released_at": "2020-01-01T00:00:00.000000Z", "released_by": "general-counsel"}
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        requests = {
            "release": dealer.send(audit_event("hold.released", released)),
            "sweep": dealer.send(audit_event("retention.sweep_requested", {"as_of": "2099-01-01T00:00:00Z"})),
            "reconcile": dealer.send(
                json.dumps({"event": "vnd.vault.Reconcile", "target": FOLDER, "nonce": "1"}).encode()
            ),
        }
        # a real-looking event under a made-up id: stored (and refused) under its own hash,
        # so it cannot shadow the event that really has that id
        shadowed = login("shadowed-session")
        real_id = hashlib.sha256(shadowed).hexdigest()
        claimed = dealer.send(login("impostor-session"), event_id=real_id)
        assert claimed == real_id  # acked as the sender named it: it lets go
        for eid in requests.values():  # acked: kept, as dead letters
            job = served.wait_job(eid, FAILED, seconds=10)
            assert "administrative request" in (job.reason or ""), job.reason
        assert served.job(real_id) is None  # nothing stored under the made-up id
        # ... so the real event with that id is a new job, and a real worker does it
        assert dealer.send(shadowed) == real_id
        served.wait_job(real_id, DONE)
    listed = {j["id"]: j["reason"] for j in served.json("retry", "--list")}
    assert set(requests.values()) <= set(listed)
    assert any("not the SHA-256 of its bytes" in reason for reason in listed.values())
    # what the wire refused is evidence, never work: no retry puts it back
    assert served.vaultctl("retry", "--all").stdout.strip().startswith("0 job(s)")
    refused = served.vaultctl("retry", requests["release"][:12])
    assert refused.returncode != 0 and "stays a dead letter" in refused.stderr
    assert [e.data["session"] for e in served.entries("session.login")] == ["shadowed-session"]
    kinds = {e.kind for e in served.entries()}
    assert not kinds & {"hold.released", "retention.sweep_requested", "retention.purged"}
    served.untouched(tmp_path, size + 1)  # + the real Login
    swept = served.json("retention", "sweep", "--now", "2099-01-01T00:00Z", "--yes")
    assert swept["purge"] == [] and len(swept["held"]) == MESSAGES  # the hold still wins


FORGERIES = {
    # (what the fake worker answers for a Login job, the reason the dead letter gives)
    "a purge": (
        lambda f: [f.entry("retention.purged", f.item, rule="x", reason="forged", blob=f.blob)],
        "retention.purged is never a worker's",
    ),
    "an erasure certificate": (
        lambda f: [f.entry("erasure.certified", "er-23456789", request="er-23456789", items=[f.item])],
        "erasure.certified is never a worker's",
    ),
    "a hold release": (
        lambda f: [f.entry("hold.released", None, matter=MATTER)],
        "hold.released is never a worker's",
    ),
    "an expunge dated 2020": (
        lambda f: [f.entry("message.expunged", f.item, time="2020-01-01T00:00:00.000000Z", mailbox=FOLDER)],
        "Login causes no message.expunged",
    ),
    "a backdated login": (lambda f: [f.login(time="2020-01-01T00:00:00.000000Z")], "not the event's 2026-"),
    "another session": (lambda f: [f.login(item="session:someone-else")], "not the event's session"),
    "another user": (
        lambda f: [f.login(actor="general-counsel")],
        "actor 'general-counsel' is not the event's",
    ),
    "another event's id": (lambda f: [f.login(event="0" * 64)], "not its job"),
}


class Forger:
    """Entries as the protocol carries them, for the job at hand."""

    def __init__(self, job_id: str, event: dict, item: str, blob: str):
        self.job_id, self.event, self.item, self.blob = job_id, event, item, blob

    def entry(self, kind, item, *, time=None, actor=CUSTODIAN, **data) -> dict:
        return {
            "kind": kind,
            "item": item,
            "data": {"event": self.job_id, **data},
            "time": time,
            "actor": actor,
        }

    def login(self, *, item=None, time=None, actor=CUSTODIAN, event=None) -> dict:
        entry = self.entry(
            "session.login",
            item or f"session:{self.event['vnd.cmu.sessionId']}",
            time=time or "2026-11-22T12:55:06.207000Z",
            actor=actor,
            service="imap",
        )
        if event:
            entry["data"]["event"] = event
        return entry


def test_a_fake_worker_cannot_forge_entries_and_loses_no_job(served: Served, tmp_path):
    size = len(served.entries())
    [item, *_] = served.items()
    [appended] = [e for e in served.entries("message.appended") if e.item == item]
    worker = FakeWorker(
        served.addresses["control"], served.addresses["worker"], curve=insider(served.home, "worker")
    )
    spoiled: dict[str, str] = {}
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        worker.ready(len(FORGERIES))
        for n, (what, (forge, why)) in enumerate(FORGERIES.items()):
            sent = dealer.send(login(f"session-{n}"))
            job_id, event = worker.take()
            assert job_id == sent
            worker.done(job_id, forge(Forger(job_id, event, item, appended.data["blob"])))
            job = served.wait_job(job_id, FAILED)
            reason = job.reason or ""
            assert why in reason and worker.name.decode() in reason, (what, reason)
            spoiled[job_id] = what

        # an outcome from "our" heartbeat socket, or for a job it was not given, is nobody's
        worker.ready()
        late = dealer.send(login("session-late"))
        job_id, event = worker.take(fetch=True)  # the worker router hands out the TAKE's bytes again
        valid = [Forger(job_id, event, item, "").login()]
        impostor = worker.impostor(served.addresses["control"])
        worker.done(job_id, valid, sock=impostor)
        other = FakeWorker(
            served.addresses["control"], served.addresses["worker"], curve=insider(served.home, "worker")
        )
        other.done(job_id, valid)
        other.work.send_multipart([p.GET, job_id.encode()])  # ...and to its holder only
        assert other.work.poll(10_000) and other.work.recv_multipart() == [p.GONE, job_id.encode()]
        time.sleep(1.0)
        held = served.job(job_id)
        assert held is not None and held.state == BUSY and served.entries("session.login") == []
        impostor.close(0)
        other.close()

        # the real audit entry of a real restore, made meanwhile, is recorded: it never
        # travels as a job a worker could take
        worker.ready(5)
        restored = served.vaultctl(
            "restore", "--mailbox", FOLDER, "--at", "now", "--to", f"maildir:{tmp_path / 'r'}"
        )
        assert restored.returncode == 0, restored.stderr
        assert [e.data["mailbox"] for e in served.entries("restore.done")] == [FOLDER]
        assert not worker.control.poll(500)  # and nothing was handed to the fake worker
    worker.close()  # silent from now on: its job goes back to the queue

    kinds = {e.kind for e in served.entries()}
    assert not kinds & {"retention.purged", "erasure.certified", "hold.released", "session.login"}
    assert not [e for e in served.entries("message.expunged")]
    served.untouched(tmp_path, size + 1)  # + the restore's audit entry

    # nothing lost: a real worker does the late job, and every spoiled one once retried
    served.start_worker()
    served.wait_job(late, DONE)
    for job_id in spoiled:
        done = served.vaultctl("retry", job_id[:16])
        assert done.returncode == 0, done.stderr
    for job_id in spoiled:
        served.wait_job(job_id, DONE)
    logins = served.entries("session.login")
    assert sorted(e.item for e in logins) == sorted(
        [f"session:session-{n}" for n in range(len(FORGERIES))] + ["session:session-late"]
    )
    assert {(e.time, e.actor) for e in logins} == {("2026-11-22T12:55:06.207000Z", CUSTODIAN)}


def test_one_forged_result_spoils_only_its_own_job(served: Served):
    """Two jobs of different mailboxes out at once: the valid answer is committed, the forged
    one refused, whether or not the committer took them in one batch."""
    worker = FakeWorker(
        served.addresses["control"], served.addresses["worker"], curve=insider(served.home, "worker")
    )
    subscribe = json.dumps(
        {
            "event": "MailboxSubscribe",
            "timestamp": "2026-11-22T13:00:00.000Z",
            "uri": f"imap://vault.test/{FOLDER}",
            "user": CUSTODIAN,
            "vnd.cmu.sessionId": "s-sub",
        }
    ).encode()
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        worker.ready(2)
        ids = {dealer.send(login("s-login")), dealer.send(subscribe)}
        jobs = dict(worker.take() for _ in range(2))
    assert set(jobs) == ids
    [login_id] = [j for j, e in jobs.items() if e["event"] == "Login"]
    [subscribe_id] = [j for j, e in jobs.items() if e["event"] == "MailboxSubscribe"]
    [item, *_] = served.items()
    worker.done(login_id, [Forger(login_id, jobs[login_id], item, "").login()])
    forged = Forger(subscribe_id, jobs[subscribe_id], item, "")
    worker.done(
        subscribe_id, [forged.entry("folder.subscribed", "someone-elses-folder", time=None, mailbox="x")]
    )
    served.wait_job(login_id, DONE)
    assert "not the folder the event names" in (served.wait_job(subscribe_id, FAILED).reason or "")
    assert [e.item for e in served.entries("session.login")] == ["session:s-login"]
    assert served.entries("folder.subscribed") == []
    worker.close()


@pytest.mark.parametrize("name", ["vnd.vault.Audit", "vnd.vault.Reconcile", "vnd.vault.Anything"])
def test_no_worker_ever_sees_an_administrative_event(served: Served, name):
    worker = FakeWorker(
        served.addresses["control"], served.addresses["worker"], curve=insider(served.home, "worker")
    )
    worker.ready()
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        eid = dealer.send(json.dumps({"event": name, "kind": "hold.released", "nonce": name}).encode())
    assert name in (served.wait_job(eid, FAILED, seconds=10).reason or "")
    assert not worker.control.poll(1500)
    worker.close()
