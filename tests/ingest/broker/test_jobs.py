"""The broker's job queue: durable, per-mailbox ordered, postponed jobs don't block, failed
jobs wait in the dead-letter list until retried."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.ingest.broker.jobs import BUSY, DONE, FAILED, PENDING, Job, JobStore, describe


def event(mailbox_id: str | None, n: int, name: str = "MessageNew") -> tuple[str, bytes, str]:
    fields = {"event": name, "n": n, "uri": f"imap://u@h/{mailbox_id or 'x'};UID={n}"}
    if mailbox_id:
        fields["mailboxID"] = mailbox_id
    raw = json.dumps(fields).encode()
    return hashlib.sha256(raw).hexdigest(), raw, "host"


def stored(jobs: JobStore, job_id: str) -> Job:
    """The job as stored; it must be there."""
    job = jobs.get(job_id)
    assert job is not None, f"job {job_id} is not stored"
    return job


def test_jobs_survive_reopening_and_duplicates_are_stored_once(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    a, b = event("m1", 1), event("m1", 2)
    assert jobs.add_many([a, b, a]) == [True, True, False]
    jobs.close()
    jobs = JobStore(tmp_path / "jobs.sqlite")
    assert [j.id for j in jobs.jobs()] == [a[0], b[0]]
    assert stored(jobs, a[0]).raw == a[1] and stored(jobs, a[0]).mailbox == "m1"


def test_one_busy_job_per_mailbox_in_arrival_order(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    m1 = [event("m1", i, "FlagsSet") for i in range(3)]
    m2 = [event("m2", i, "FlagsSet") for i in range(2)]
    jobs.add_many([m1[0], m2[0], m1[1], m2[1], m1[2]])
    first = jobs.dispatchable(10)
    assert [j.id for j in first] == [m1[0][0], m2[0][0]]
    assert jobs.take(m1[0][0], "w1")
    assert [j.id for j in jobs.dispatchable(10)] == [m2[0][0]]  # m1 waits for its BUSY job
    jobs.done([m1[0][0]])
    assert [j.id for j in jobs.dispatchable(10)] == [m2[0][0], m1[1][0]]


def test_new_messages_overtake_each_other_but_nothing_else(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    new1, new2, flags, new3 = (event("m", 1), event("m", 2), event("m", 3, "FlagsSet"), event("m", 4))
    jobs.add_many([new1, new2, flags, new3])
    assert [j.id for j in jobs.dispatchable(10)] == [new1[0], new2[0]]  # the flags change waits
    jobs.take_many([(new1[0], "w1"), (new2[0], "w2")])
    assert jobs.dispatchable(10) == []
    jobs.done([new1[0]])
    assert jobs.dispatchable(10) == []  # new2 still BUSY
    jobs.done([new2[0]])
    assert [j.id for j in jobs.dispatchable(10)] == [flags[0]]  # new3 waits behind it
    jobs.take(flags[0], "w1")
    assert jobs.dispatchable(10) == []
    jobs.done([flags[0]])
    assert [j.id for j in jobs.dispatchable(10)] == [new3[0]]


def test_postponed_job_does_not_block_its_mailbox(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    logout, login = event(None, 1, "Logout"), event(None, 2, "Login")
    jobs.add_many([logout, login])
    assert jobs.take(logout[0], "w")
    assert jobs.postpone(logout[0], "Logout before its Login", delay=60, max_postpones=5)
    assert [j.id for j in jobs.dispatchable(10)] == [login[0]]
    assert [j.id for j in jobs.dispatchable(10, now=stored(jobs, logout[0]).updated + 61)] == [logout[0]]


def test_a_postponed_new_message_is_never_overtaken_by_a_change_of_its_mailbox(tmp_path):
    """Its expunge must not be recorded before it arrives (seen in the story test: a MessageNew
    postponed once, the MessageExpunge of the same UID committed first). New messages still
    pass it; it goes to FAILED after its postponements, and then the rest goes on."""
    jobs = JobStore(tmp_path / "jobs.sqlite")
    new1, expunge, new2 = event("m", 1), event("m", 2, "MessageExpunge"), event("m", 3)
    jobs.add_many([new1, expunge, new2])
    assert jobs.take(new1[0], "w")
    assert jobs.postpone(new1[0], "collector: no answer", delay=60, max_postpones=2)
    assert [j.id for j in jobs.dispatchable(10)] == []  # new2 waits behind the expunge
    later = stored(jobs, new1[0]).updated + 61
    assert [j.id for j in jobs.dispatchable(10, now=later)] == [new1[0]]
    assert jobs.take(new1[0], "w")
    assert not jobs.postpone(new1[0], "collector: no answer", delay=60, max_postpones=2)  # FAILED
    assert [j.id for j in jobs.dispatchable(10)] == [expunge[0]]


def test_postponed_too_often_fails_and_retry_brings_it_back(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    job = event("m", 1)
    jobs.add(*job)
    for _ in range(2):
        jobs.take(job[0], "w")
        jobs.postpone(job[0], "collector down", delay=0, max_postpones=3)
    jobs.take(job[0], "w")
    assert not jobs.postpone(job[0], "collector down", delay=0, max_postpones=3)
    failed = stored(jobs, job[0])
    assert failed.state == FAILED and failed.reason is not None and "postponed 3 times" in failed.reason
    assert jobs.retry() == 1
    assert stored(jobs, job[0]).state == PENDING and stored(jobs, job[0]).postponed == 0


def test_recover_and_lost_worker(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    a, b = event("m1", 1), event("m2", 1)
    jobs.add_many([a, b])
    jobs.take(a[0], "w1")
    jobs.take(b[0], "w2")
    assert jobs.release_worker("w1", "silent") == [a[0]]
    assert stored(jobs, a[0]).state == PENDING and stored(jobs, b[0]).state == BUSY
    # its result is with the committer (the broker keeps that set in memory)
    assert jobs.release_worker("w2", "silent", keep={b[0]}) == []
    assert jobs.recover() == 1
    assert jobs.counts() == {PENDING: 2, BUSY: 0, DONE: 0, FAILED: 0}


def test_describe_orders_by_mailbox_id_then_uri():
    assert describe(b'{"event":"FlagsSet","mailboxID":"abc","uri":"imap://u@h/user/x"}') == (
        "abc",
        "FlagsSet",
    )
    assert describe(b'{"event":"Login","uri":"imap://u@h/user%2Fx;UIDVALIDITY=1/;UID=2"}')[0] == "user/x"
    assert describe(b'{"event":"Login"}') == ("-", "Login")
    assert describe(b"not json") == ("-", None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_describe_never_raises(raw):
    key, name = describe(raw)
    assert isinstance(key, str) and key


def test_events_with_nothing_to_record_are_done_on_arrival_and_hold_nothing_up(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    flags, modseq, new = event("m", 1, "FlagsSet"), event("m", 2, "MailboxModseq"), event("m", 3)
    assert jobs.add_many([flags, modseq, new, modseq]) == [True, True, True, False]
    assert stored(jobs, modseq[0]).state == DONE
    assert [j.id for j in jobs.dispatchable(10)] == [flags[0]]
    jobs.take(flags[0], "w1")
    jobs.done([flags[0]])
    assert [j.id for j in jobs.dispatchable(10)] == [new[0]]


def test_what_the_broker_skips_records_nothing_in_the_handlers():
    """NOTHING_TO_RECORD must stay true of the handlers: each real such event, handled, yields
    no entries (no catalog, store or collector needed)."""
    from tests.ingest.dealer.helpers import event_lines
    from vault.ingest.broker.jobs import NOTHING_TO_RECORD
    from vault.ingest.worker.handlers import handle

    samples = [json.loads(line) for line in event_lines() if json.loads(line)["event"] in NOTHING_TO_RECORD]
    assert samples
    for ev in samples:
        assert handle(ev, None) == []


def test_a_job_is_waited_on_when_a_later_one_of_its_mailbox_cannot_run_before_it(tmp_path):
    # the committer commits such a job's result promptly, the others in bigger batches
    jobs = JobStore(tmp_path / "jobs.sqlite")
    new1, new2, flags, new3 = (event("m", 1), event("m", 2), event("m", 3, "FlagsSet"), event("m", 4))
    elsewhere = event("n", 1, "FlagsSet")
    jobs.add_many([new1, new2, elsewhere])
    jobs.take_many([(new1[0], "w1"), (new2[0], "w2"), (elsewhere[0], "w1")])
    # new messages commute, and another mailbox's jobs wait for nothing of this one
    assert not jobs.waited_on(new1[0]) and not jobs.waited_on(elsewhere[0])
    jobs.add_many([flags, new3])
    assert jobs.waited_on(new1[0]) and jobs.waited_on(new2[0])  # the flags change waits for both
    assert [j.id for j in jobs.dispatchable(10)] == []
    jobs.done([new1[0], new2[0]])
    assert [j.id for j in jobs.dispatchable(10)] == [flags[0]]
    jobs.take(flags[0], "w1")
    assert jobs.waited_on(flags[0])  # the new message after it waits for it
    jobs.done([flags[0]])
    jobs.take(new3[0], "w1")
    assert not jobs.waited_on(new3[0])  # the last of its mailbox
    assert not jobs.waited_on("no such job")
