"""Who may talk to the broker (the real ``vaultctl serve`` on loopback, CURVE by default): a
dealer or a worker without CURVE, or with a key on no allow-list, can neither submit an event
nor take a job, and the service logs each (address and key fingerprint); worker keys rotate
with ``vaultctl keys trust|revoke`` and a SIGHUP, no restart; a key revoked while its
connection is open gets nothing more on it."""

from __future__ import annotations

import hashlib

from tests.ingest.broker.conftest import Served
from tests.ingest.broker.test_wire_attacks import Forger, login
from tests.ingest.broker.wire import FakeDealer, FakeWorker, insider, stranger
from vault.curve.keys import fingerprint
from vault.ingest.broker.jobs import DONE, PENDING


def fake_worker(served: Served, curve) -> FakeWorker:
    return FakeWorker(served.addresses["control"], served.addresses["worker"], curve=curve)


def answer_next(served: Served, worker: FakeWorker) -> str:
    """READY, take the next job, answer it as a real worker would; until it is DONE."""
    worker.ready()
    job_id, event = worker.take()
    worker.done(job_id, [Forger(job_id, event, "", "").login()])
    served.wait_job(job_id, DONE)
    return job_id


def untaken(worker: FakeWorker, seconds: float = 2.0) -> bool:
    """No TAKE reaches the worker within ``seconds``."""
    return not worker.control.poll(int(seconds * 1000))


def test_keyless_and_unlisted_dealers_submit_nothing(served: Served):
    unlisted = stranger(served.home)
    for n, curve in enumerate(
        (None, unlisted, insider(served.home, "worker"))
    ):  # a worker's key is no dealer's
        event = login(f"intruder-{n}")
        with FakeDealer(served.addresses["dealer"], curve) as dealer:
            assert not dealer.offer(event, timeout=2.0)
        assert served.job(hashlib.sha256(event).hexdigest()) is None
    served.wait_log("refused a client on dealers")
    assert "without CURVE" in served.log()
    served.wait_log(f"refused 127.0.0.1 on dealers: key {fingerprint(unlisted.public)}")
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        assert dealer.offer(login("the real dealer"))  # and the listed dealer is heard


def test_keyless_and_unlisted_workers_take_no_job(served: Served):
    unlisted = stranger(served.home)
    intruders = [fake_worker(served, None), fake_worker(served, unlisted)]
    for w in intruders:
        w.ready(3)
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        job_id = dealer.send(login("for a worker"))
    assert all(untaken(w) for w in intruders)
    job = served.job(job_id)
    assert job is not None and job.state == PENDING
    served.wait_log("refused a client on workers")
    served.wait_log(f"refused 127.0.0.1 on workers: key {fingerprint(unlisted.public)}")
    for w in intruders:
        w.close()
    real = fake_worker(served, insider(served.home, "worker"))
    real.ready()
    taken, _ = real.take()
    assert taken == job_id
    real.close()


def test_worker_keys_rotate_on_sighup(served: Served):
    new = stranger(served.home)
    with FakeDealer(served.addresses["dealer"], insider(served.home)) as dealer:
        before = fake_worker(served, new)
        before.ready()
        first = dealer.send(login("rotation-1"))
        assert untaken(before)
        before.close()

        done = served.vaultctl("keys", "trust", "workers", "worker2", new.public.decode())
        assert done.returncode == 0, done.stderr
        served.reload()
        joined = fake_worker(served, new)
        assert answer_next(served, joined) == first

        # the old key (init's worker) out: refused from the next connection on
        assert served.vaultctl("keys", "revoke", "workers", "local").returncode == 0
        served.reload()
        old = fake_worker(served, insider(served.home, "worker"))
        old.ready()
        second = dealer.send(login("rotation-2"))
        assert untaken(old)
        old.close()
        assert answer_next(served, joined) == second

        # and the new one revoked while connected: what it sends is ignored
        assert served.vaultctl("keys", "revoke", "workers", "worker2").returncode == 0
        served.reload()
        joined.ready()
        third = dealer.send(login("rotation-3"))
        assert untaken(joined, 3.0)
        served.wait_log("no longer allowed")
        job = served.job(third)
        assert job is not None and job.state == PENDING
        joined.close()
