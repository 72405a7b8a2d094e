"""Scheduled jobs: the pure "what was missed" logic, and catch-up through a real APScheduler."""

import threading
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.policy.helpers import UTC, at
from vault.config import Config
from vault.service.scheduler import (
    ScheduleError,
    Scheduler,
    cron_trigger,
    latest_missed,
    scheduler_from_config,
)


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


# ---------------------------------------------------------------- latest_missed (pure)


@pytest.mark.parametrize(
    "cron, since, now, expected",
    [
        # daily at 03:00, down for four days: one catch-up, for the latest fire
        ("0 3 * * *", at(2024, 1, 1, 3), at(2024, 1, 5, 12), at(2024, 1, 5, 3)),
        ("0 3 * * *", at(2024, 1, 1, 3), at(2024, 1, 2, 2, 59), None),
        ("0 3 * * *", at(2024, 1, 1, 3), at(2024, 1, 2, 3), at(2024, 1, 2, 3)),  # now inclusive
        ("0 3 * * *", at(2024, 1, 1, 3), at(2024, 1, 1, 3), None),  # since exclusive
        ("*/30 * * * *", at(2024, 1, 1, 0, 0), at(2024, 3, 1, 10, 59), at(2024, 3, 1, 10, 30)),
        ("0 0 29 2 *", at(2021, 1, 1), at(2027, 1, 1), at(2024, 2, 29)),  # rare fire, years back
        # crontab weekdays: 1 = Monday, 0 and 7 = Sunday (2024-01-15 is a Monday)
        ("15 4 * * 1", at(2024, 1, 1), at(2024, 1, 20), at(2024, 1, 15, 4, 15)),
        ("15 4 * * 0", at(2024, 1, 1), at(2024, 1, 20), at(2024, 1, 14, 4, 15)),
        ("15 4 * * 7", at(2024, 1, 1), at(2024, 1, 20), at(2024, 1, 14, 4, 15)),
        ("15 4 * * 1-5", at(2024, 1, 1), at(2024, 1, 20), at(2024, 1, 19, 4, 15)),  # Friday
        ("15 4 * * 6,0", at(2024, 1, 1), at(2024, 1, 19), at(2024, 1, 14, 4, 15)),
        ("15 4 * * */3", at(2024, 1, 1), at(2024, 1, 19), at(2024, 1, 17, 4, 15)),  # Sun,Wed,Sat
        ("15 4 * * sat", at(2024, 1, 1), at(2024, 1, 19), at(2024, 1, 13, 4, 15)),
    ],
)
def test_latest_missed_examples(cron, since, now, expected):
    assert latest_missed(cron, since, now) == expected


def test_latest_missed_in_a_time_zone():
    berlin = cron_trigger("0 3 * * *", "Europe/Berlin")
    # 03:00 in Berlin in winter is 02:00 UTC
    assert latest_missed(berlin, at(2024, 1, 1), at(2024, 1, 2, 2, 30)) == at(2024, 1, 2, 2)
    # and in summer 01:00 UTC
    assert latest_missed(berlin, at(2024, 7, 1), at(2024, 7, 2, 1, 30)) == at(2024, 7, 2, 1)


def brute_force(trigger, since, now):
    """Walk every fire time (fine for the short ranges below): the oracle."""
    last = None
    fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire)
    # in UTC: an ambiguous local time (the hour repeated when clocks go back) never compares
    # equal to another zone's datetime (PEP 495), even when both name the same instant
    return last.astimezone(UTC) if last is not None else None


crons = st.sampled_from(
    [
        "*/30 * * * *",
        "0 3 * * *",
        "30 2 * * *",
        "5,35 */2 * * *",
        "0 0 * * 0",
        "59 23 31 * *",
        "*/7 9-17 * * 1-5",
    ]
)
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
)


def test_the_hour_repeated_when_clocks_go_back():
    """Berlin's 02:00 on 27 Oct 2024 is ambiguous; the fire at 00:00 UTC is found."""
    berlin = cron_trigger("*/30 * * * *", "Europe/Berlin")
    since, now = at(2024, 10, 25), at(2024, 10, 27)
    assert latest_missed(berlin, since, now) == brute_force(berlin, since, now) == at(2024, 10, 27)


@settings(max_examples=150, deadline=None)
@given(crons, zones, moments, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
def test_latest_missed_agrees_with_walking_every_fire(cron, tz, since, length):
    trigger = cron_trigger(cron, tz)
    now = since + length
    expected = brute_force(trigger, since, now)
    got = latest_missed(trigger, since, now)
    assert got == expected
    if got is not None:
        assert since < got <= now


@pytest.mark.parametrize(
    "cron",
    [
        "",
        "0 3 * *",
        "61 * * * *",
        "every day",
        "* * * * * * *",
        "0 3 * * 8",
        "0 3 * * 5-2",
        "0 3 * * */0",
        "0 3 * * funday",
    ],
)
def test_bad_cron_is_a_clear_error(cron):
    with pytest.raises(ScheduleError, match="cron"):
        cron_trigger(cron, what="[policy] sweep_schedule")


def test_bad_time_zone():
    with pytest.raises(ScheduleError, match="time zone"):
        cron_trigger("0 3 * * *", "Mars/Olympus")


# ---------------------------------------------------------------- Scheduler


def run_service(path, clock, func, cron="0 3 * * *"):
    scheduler = Scheduler(path, "UTC", clock)
    scheduler.add_job("sweep", cron, func)
    return scheduler


def test_downtime_is_caught_up_exactly_once(tmp_path):
    state = tmp_path / "scheduler.sqlite"
    clock = FakeClock(datetime.now(UTC))
    calls = []
    done = threading.Event()

    def sweep():
        calls.append(clock())
        done.set()

    # First start ever: nothing to catch up, the job waits for its next fire.
    first = run_service(state, clock, sweep)
    assert first.missed() == {}
    first.start()
    try:
        assert first.next_run_times()["sweep"] > datetime.now(UTC)
    finally:
        first.shutdown()
    assert calls == []

    # Down for three and a half days: three fires missed, one run on start.
    clock.advance(days=3, hours=12)
    second = run_service(state, clock, sweep)
    expected_fire = latest_missed("0 3 * * *", clock.now - timedelta(days=3, hours=12), clock.now)
    assert second.missed() == {"sweep": expected_fire}
    second.start()
    try:
        assert done.wait(30), "catch-up run did not happen"
        second.shutdown(wait=True)
    finally:
        second.shutdown()
    assert len(calls) == 1
    state_after = second.runs.get("sweep")
    assert state_after.covered == expected_fire and state_after.last_outcome == "ok"

    # Restarted right away: nothing more to catch up.
    third = run_service(state, clock, sweep)
    assert third.missed() == {}
    third.start()
    try:
        assert third.next_run_times()["sweep"] > datetime.now(UTC)
    finally:
        third.shutdown()
    assert len(calls) == 1


def test_a_failing_run_is_recorded_and_does_not_repeat(tmp_path):
    state = tmp_path / "scheduler.sqlite"
    clock = FakeClock(at(2024, 1, 1))
    broken = run_service(state, clock, lambda: 1 / 0)
    broken.start()
    broken.shutdown()
    clock.advance(days=2)
    again = run_service(state, clock, lambda: 1 / 0)
    again.run("sweep")  # what APScheduler calls; must not raise
    job = again.runs.get("sweep")
    assert job.last_outcome.startswith("error: ZeroDivisionError")
    assert job.covered == at(2024, 1, 2, 3)
    assert again.missed() == {}


def test_crash_during_a_run_means_it_runs_again(tmp_path):
    state = tmp_path / "scheduler.sqlite"
    clock = FakeClock(at(2024, 1, 1))
    first = run_service(state, clock, lambda: None)
    first.start()
    first.shutdown()
    clock.advance(days=1, hours=4)

    class Crash(BaseException):
        pass

    def crash():
        raise Crash()

    crashed = run_service(state, clock, crash)
    with pytest.raises(Crash):
        crashed.run("sweep")
    assert crashed.runs.get("sweep").last_started == clock.now
    assert run_service(state, clock, lambda: None).missed() == {"sweep": at(2024, 1, 2, 3)}


def test_from_config_uses_policy_schedules(tmp_path):
    config = Config.defaults(tmp_path)
    scheduler = scheduler_from_config(config, {"sweep": lambda: None, "reconcile": lambda: None})
    assert scheduler.job_names == ["reconcile", "sweep"]
    assert (tmp_path / "scheduler.sqlite").exists()

    config.values["policy"]["reconcile_schedule"] = ""  # disabled
    scheduler = scheduler_from_config(config, {"sweep": lambda: None, "reconcile": lambda: None})
    assert scheduler.job_names == ["sweep"]

    config.values["policy"]["sweep_schedule"] = "3am daily"
    with pytest.raises(ScheduleError, match="sweep"):
        scheduler_from_config(config, {"sweep": lambda: None})
    with pytest.raises(ScheduleError, match="unknown-job"):
        scheduler_from_config(Config.defaults(tmp_path), {"unknown-job": lambda: None})
