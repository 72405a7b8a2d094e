"""Cron-scheduled jobs (retention sweeps, reconciliation) inside ``vaultctl serve``.

APScheduler 3 (BackgroundScheduler, cron triggers, ``coalesce=True``,
``misfire_grace_time=None``) runs the jobs while the service is up. What APScheduler's
in-memory job store cannot know is what happened while the service was *down*, so every
job's progress is kept in a small SQLite file under the vault home: ``covered``, the latest
scheduled fire time a run has dealt with.

On start, a job whose cron fired at least once in ``(covered, now]`` is caught up: it runs
**once** right away (however many fire times were missed: they are coalesced), then
follows its cron schedule. A job seen for the first time records ``now`` as covered and
does not run: there is no downtime to make up for. ``covered`` advances only after a run
ends, so a crash during a run means the run is repeated at the next start (jobs must be
idempotent, as sweeps are); a run that raises is logged and recorded as failed, and the
next scheduled fire tries again.

The decision "what was missed" is :func:`latest_missed`, a pure function of the cron
expression and two times; :class:`Scheduler` takes an injectable ``clock`` so tests can
move through days without sleeping.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from vault.model import format_time, parse_time
from vault.model import now as utc_now

log = logging.getLogger(__name__)

_ONE_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)

# Config keys in [policy] holding each standard job's cron expression.
CONFIG_JOBS = {"sweep": "sweep_schedule", "reconcile": "reconcile_schedule"}


class ScheduleError(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (example: UTC, Europe/Berlin)") from None


_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_NUMERIC_DAYS = re.compile(r"(\*|[0-9]+(?:-[0-9]+)?)(?:/([0-9]+))?")


def _crontab_weekdays(field: str) -> str:
    """Crontab weekday numbers (0 and 7 = Sunday) as the names APScheduler 3 reads the same
    way (its numbers start at Monday, and its ``from_crontab`` does not translate them)."""
    if field in ("*", "?"):
        return "*"
    days = []
    for part in field.split(","):
        m = _NUMERIC_DAYS.fullmatch(part)
        if not m:
            days.append(part)  # names such as mon or mon-fri: APScheduler checks them
            continue
        span, step = m.group(1), int(m.group(2) or 1)
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            low, high = (int(v) for v in span.split("-"))
        else:
            low = high = int(span)
            if m.group(2):
                high = 6  # "a/n" means from a to the end
        if not (0 <= low <= high <= 7) or step < 1:
            raise ValueError(f"weekday {part!r} out of range 0-7")
        days += [_CRON_DAYS[d] for d in range(low, high + 1, step)]
    return ",".join(dict.fromkeys(days))


def cron_trigger(expression: str, tz: str | ZoneInfo = "UTC", what: str = "schedule") -> CronTrigger:
    """A trigger for a standard 5-field cron expression (``min hour day month weekday``).

    Weekdays are numbered as in crontab (0 or 7 = Sunday). Unlike Vixie cron, a schedule
    that restricts both day of month and weekday fires only when both match.
    """
    if isinstance(tz, str):
        tz = zone(tz)
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"{len(fields)} fields instead of 5")
        minute, hour, day, month, weekday = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=tz,
        )
    except (ValueError, TypeError) as e:
        raise ScheduleError(
            f'{what}: not a cron expression: {expression!r} ({e}); example: "0 3 * * *"'
        ) from None


def _next_fire(trigger: CronTrigger, at_or_after: datetime) -> datetime | None:
    fire = trigger.get_next_fire_time(None, at_or_after)
    return fire.astimezone(UTC) if fire is not None else None


def latest_missed(trigger: CronTrigger | str, since: datetime, now: datetime) -> datetime | None:
    """The latest fire time in ``(since, now]``, or None when the cron did not fire then.

    Cron fire times are whole seconds, so a bisection on time (down to one second) finds
    the last one without walking through every fire of a frequent schedule.
    """
    if isinstance(trigger, str):
        trigger = cron_trigger(trigger)
    since, now = since.astimezone(UTC), now.astimezone(UTC)
    first = _next_fire(trigger, since + _TICK)
    if first is None or first > now:
        return None
    # Invariant: the next fire at or after lo is <= now; at or after hi it is > now.
    lo, hi = first, now + _TICK
    while hi - lo > _ONE_SECOND:
        mid = lo + (hi - lo) / 2
        fire = _next_fire(trigger, mid)
        if fire is not None and fire <= now:
            lo = mid
        else:
            hi = mid
    return _next_fire(trigger, lo)


@dataclass(frozen=True)
class JobState:
    name: str
    covered: datetime | None  # latest scheduled fire time dealt with
    last_started: datetime | None
    last_finished: datetime | None
    last_outcome: str | None  # "ok" or "error: ..."


class RunLog:
    """Per-job progress in SQLite; one short connection per call, so any thread may write."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (name TEXT PRIMARY KEY, covered TEXT, "
                "last_started TEXT, last_finished TEXT, last_outcome TEXT)"
            )

    def _connect(self) -> closing[sqlite3.Connection]:
        return closing(sqlite3.connect(self.path, timeout=30, isolation_level=None))

    def get(self, name: str) -> JobState:
        with self._connect() as db:
            row = db.execute(
                "SELECT covered, last_started, last_finished, last_outcome FROM jobs WHERE name=?",
                (name,),
            ).fetchone()
        if row is None:
            return JobState(name, None, None, None, None)
        covered, started, finished = (parse_time(v) if v else None for v in row[:3])
        return JobState(name, covered, started, finished, row[3])

    def _upsert(self, name: str, **values):
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c}=excluded.{c}" for c in values)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO jobs (name, {cols}) VALUES (?, {marks}) "
                f"ON CONFLICT(name) DO UPDATE SET {updates}",
                (name, *values.values()),
            )

    def set_covered(self, name: str, covered: datetime):
        self._upsert(name, covered=format_time(covered))

    def started(self, name: str, when: datetime):
        self._upsert(name, last_started=format_time(when))

    def finished(self, name: str, when: datetime, covered: datetime, outcome: str):
        self._upsert(
            name, covered=format_time(covered), last_finished=format_time(when), last_outcome=outcome
        )


@dataclass
class _Job:
    name: str
    trigger: CronTrigger
    func: Callable[[], object]


class Scheduler:
    """Named cron jobs with catch-up of runs missed while the service was down."""

    def __init__(
        self, state_path: Path | str, timezone_name: str = "UTC", clock: Callable[[], datetime] = utc_now
    ):
        self.tz = zone(timezone_name)
        self.clock = clock
        self.runs = RunLog(state_path)
        self._jobs: dict[str, _Job] = {}
        self._aps = BackgroundScheduler(timezone=self.tz)
        self._lock = threading.Lock()

    def add_job(self, name: str, cron: str, func: Callable[[], object]):
        """Run ``func()`` on ``cron``; an empty expression leaves the job out (disabled)."""
        if not cron.strip():
            return
        if name in self._jobs:
            raise ScheduleError(f"job {name!r} added twice")
        self._jobs[name] = _Job(name, cron_trigger(cron, self.tz, f"job {name!r}"), func)

    @property
    def job_names(self) -> list[str]:
        return sorted(self._jobs)

    def missed(self) -> dict[str, datetime]:
        """Jobs that fired while nothing ran them, with the latest missed fire time."""
        now = self.clock()
        out = {}
        for job in self._jobs.values():
            covered = self.runs.get(job.name).covered
            fire = latest_missed(job.trigger, covered, now) if covered else None
            if fire is not None:
                out[job.name] = fire
        return out

    def start(self):
        missed = self.missed()
        now = self.clock()
        for job in self._jobs.values():
            if self.runs.get(job.name).covered is None:
                self.runs.set_covered(job.name, now)
            extra = {}
            if job.name in missed:
                log.info(
                    "job %s missed its run at %s: catching up once", job.name, format_time(missed[job.name])
                )
                # APScheduler's own clock decides when "now" is for it, not ours.
                extra["next_run_time"] = datetime.now(self.tz)
            self._aps.add_job(
                self.run,
                job.trigger,
                args=[job.name],
                id=job.name,
                name=job.name,
                coalesce=True,
                misfire_grace_time=None,
                max_instances=1,
                **extra,
            )
        self._aps.start()

    def shutdown(self, wait: bool = True):
        if self._aps.running:
            self._aps.shutdown(wait=wait)

    def next_run_times(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}

    def run(self, name: str):
        """One run of job ``name`` (what the cron trigger and the catch-up call)."""
        job = self._jobs[name]
        with self._lock:
            covered = self.runs.get(name).covered
        started = self.clock()
        fire = (latest_missed(job.trigger, covered, started) if covered else None) or started
        self.runs.started(name, started)
        try:
            job.func()
            outcome = "ok"
        except Exception as e:  # a failing job must not stop the service or other jobs
            log.exception("scheduled job %s failed", name)
            outcome = f"error: {type(e).__name__}: {e}"
        with self._lock:
            previous = self.runs.get(name).covered
            covered = max(fire, previous) if previous else fire
            self.runs.finished(name, self.clock(), covered, outcome)


def scheduler_from_config(
    config, jobs: dict[str, Callable[[], object]], clock: Callable[[], datetime] = utc_now
) -> Scheduler:
    """A Scheduler for the standard jobs (``sweep``, ``reconcile``) on their [policy] crons."""
    policy = config["policy"]
    scheduler = Scheduler(config.path("policy", "scheduler_state_path"), policy["schedule_timezone"], clock)
    for name, func in sorted(jobs.items()):
        if name not in CONFIG_JOBS:
            raise ScheduleError(f"no schedule configured for job {name!r}; known: {sorted(CONFIG_JOBS)}")
        scheduler.add_job(name, policy[CONFIG_JOBS[name]], func)
    return scheduler
