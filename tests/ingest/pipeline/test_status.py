"""vaultctl status with the live pipeline: the service, its workers, the last event; exit 1
with the reason when a worker is killed and does not come back."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.cyrus


def test_status_fails_when_a_worker_is_killed(pipeline_factory):
    pipeline = pipeline_factory(workers=2, users=("alice",))
    pipeline.cyrus.lmtp_deliver("alice@vault.test", b"Subject: hi\r\nMessage-ID: <st1@x>\r\n\r\nhi\r\n")
    pipeline.wait_settled()
    ok = pipeline.vaultctl("status", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    status = json.loads(ok.stdout)
    assert status["service"].startswith("running") and status["problems"] == []
    assert status["workers"].count("seen") == 2  # both workers, by the names they gave
    assert status["last_event"].startswith("20")

    pipeline.kill("worker1")
    deadline = time.monotonic() + 60  # the broker drops a worker silent for worker_timeout_seconds (5)
    while True:
        down = pipeline.vaultctl("status")
        if down.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert down.returncode == 1, down.stdout
    assert "went silent and no worker has taken its place" in down.stderr and down.stderr.startswith(
        "problem: worker "
    )

    pipeline.start_worker(1)  # a worker in its place: healthy again
    deadline = time.monotonic() + 60
    while pipeline.vaultctl("status").returncode != 0:
        assert time.monotonic() < deadline, pipeline.vaultctl("status").stderr
        time.sleep(1)

    pipeline.kill("broker")  # the service itself: down, and said so
    down = pipeline.vaultctl("status")
    assert down.returncode == 1 and "the vault service is not running" in down.stderr
