"""The maintenance jobs on their cron schedules (UTC), run inside the daemon.

With several workers on one database each scheduled run happens once: a job runs in the
transaction that holds its ``embedworker_schedules`` row (``SELECT ... FOR UPDATE``) and records
the fire time it ran for, so a worker that waited for the lock sees it done and skips. A fire time
missed while no worker was up is run at the next start; several missed ones make one run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import structlog
from croniter import croniter

from embedworker.config import Settings
from embedworker.db import maintenance
from embedworker.db.connect import DATABASE_ERRORS, describe

log = structlog.get_logger(__name__)

T = TypeVar("T")

# A job (or waiting for another worker's run of it) may outlast the pool's command_timeout.
JOB_TIMEOUT_S = 900.0
# A job that failed is tried again this soon rather than at its next fire time.
RETRY_AFTER_S = 60.0
# The loop wakes at least this often, so a jump of the wall clock is noticed.
MAX_WAIT_S = 300.0


Job = Callable[[maintenance.Executor, Settings], Awaitable[dict[str, int]]]

_ENSURE_ROW_SQL = "INSERT INTO embedworker_schedules (name) VALUES ($1) ON CONFLICT DO NOTHING"
_LOCK_ROW_SQL = "SELECT last_run_at FROM embedworker_schedules WHERE name = $1 FOR UPDATE"
_RECORD_SQL = """
UPDATE embedworker_schedules SET last_run_at = $2, last_result = $3, updated_at = now()
WHERE name = $1
"""


@dataclass(frozen=True)
class JobRun:
    """One run of a job: the fire time it was for and what it changed."""

    job: str
    fire_time: datetime
    counts: Mapping[str, int]

    @property
    def result(self) -> str:
        """The counts as short text, e.g. ``completed_deleted=3 failed_deleted=0``."""
        return " ".join(f"{name}={value}" for name, value in self.counts.items())


async def _cleanup(conn: maintenance.Executor, settings: Settings) -> dict[str, int]:
    counts = await maintenance.cleanup(
        conn,
        settings.completed_retention_days,
        settings.failed_retention_days,
        timeout_s=JOB_TIMEOUT_S,
    )
    return dataclasses.asdict(counts)


async def _retry_failed(conn: maintenance.Executor, settings: Settings) -> dict[str, int]:
    return {"requeued": await maintenance.retry_failed(
        conn, settings.max_retries, timeout_s=JOB_TIMEOUT_S
    )}


async def _reset_stuck(conn: maintenance.Executor, settings: Settings) -> dict[str, int]:
    return {"requeued": await maintenance.reset_stuck(conn, timeout_s=JOB_TIMEOUT_S)}


JOBS: dict[str, Job] = {"cleanup": _cleanup, "retry_failed": _retry_failed}
JOB_NAMES = tuple(JOBS)
# `embedworker maintenance` runs these by hand; only JOBS have schedules.
MANUAL_JOBS: dict[str, Job] = {
    "cleanup": _cleanup, "retry-failed": _retry_failed, "reset-stuck": _reset_stuck,
}


def job_crons(settings: Settings) -> dict[str, str]:
    """Each job's cron string, in the order the jobs run; "" means off."""
    return {"cleanup": settings.schedules.cleanup, "retry_failed": settings.schedules.retry_failed}


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def latest_fire_time(cron: str, now: datetime) -> datetime:
    """The most recent time ``cron`` fires at or before ``now``."""
    # get_prev is strictly before its start; a fire time equal to now counts as reached.
    fire: datetime = croniter(cron, _utc(now) + timedelta(microseconds=1)).get_prev(datetime)
    return fire


def next_fire_time(cron: str, now: datetime) -> datetime:
    """The first time ``cron`` fires strictly after ``now``."""
    fire: datetime = croniter(cron, _utc(now)).get_next(datetime)
    return fire


def due_fire_time(cron: str, now: datetime, last_run_at: datetime | None) -> datetime | None:
    """The fire time a run is due for, or None when the job is off or has run for it already."""
    if not cron:
        return None
    fire = latest_fire_time(cron, now)
    if last_run_at is not None and last_run_at >= fire:
        return None
    return fire


def seconds_to_wake(crons: Iterable[str], now: datetime, *, retrying: bool) -> float:
    """How long the loop may wait: to the next fire time, or sooner to retry a failed job."""
    waits = [MAX_WAIT_S, *([RETRY_AFTER_S] if retrying else [])]
    waits += [(next_fire_time(cron, now) - now).total_seconds() for cron in crons if cron]
    return max(min(waits), 0.0)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs the enabled maintenance jobs when they fall due, once across all workers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self._changed = asyncio.Event()
        # Per job, a fire time known to have run: never later than its row's last_run_at, which
        # only grows, so a job not due by it needs no database round trip.
        self._done: dict[str, datetime] = {}
        self._failing: set[str] = set()

    def reload(self, settings: Settings) -> None:
        """Use new cron strings and retention from the next computation on; wakes run()."""
        if job_crons(settings) != job_crons(self._settings):
            log.info("schedule.reloaded", **job_crons(settings))
        self._settings = settings
        self._changed.set()

    def next_run(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Each job's next fire time after ``now`` (None when off), for status output."""
        now = now if now is not None else self._clock()
        return {
            job: next_fire_time(cron, now) if cron else None
            for job, cron in job_crons(self._settings).items()
        }

    async def run(self, stopping: asyncio.Event) -> None:
        """Run due jobs, then wait for the next fire time, a reload or ``stopping``; repeat."""
        log.info("schedule.started", **_iso(self.next_run()))
        while not stopping.is_set():
            self._changed.clear()
            await _unless_stopped(self.run_due(), stopping)
            if stopping.is_set():
                return
            wait_s = seconds_to_wake(
                job_crons(self._settings).values(), self._clock(), retrying=bool(self._failing)
            )
            await _wait_any([stopping, self._changed], wait_s)

    async def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """One pass: run each enabled job whose latest fire time has not run yet."""
        now = now if now is not None else self._clock()
        settings = self._settings
        runs: list[JobRun] = []
        for job, cron in job_crons(settings).items():
            fire = due_fire_time(cron, now, self._done.get(job))
            if fire is None:
                if not cron:
                    self._failing.discard(job)
                continue
            try:
                run = await self._run_once(job, fire, settings)
            except DATABASE_ERRORS as exc:
                self._failing.add(job)
                log.error(
                    "schedule.failed",
                    job=job,
                    fire_time=fire.isoformat(),
                    error=describe(exc),
                    retry_in_s=RETRY_AFTER_S,
                )
                continue
            self._failing.discard(job)
            if run is not None:
                log.info("schedule.ran", job=job, fire_time=fire.isoformat(), **run.counts)
                runs.append(run)
        return runs

    async def _run_once(self, job: str, fire: datetime, settings: Settings) -> JobRun | None:
        """Run ``job`` for ``fire`` under its row's lock, unless some worker already did."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_ENSURE_ROW_SQL, job, timeout=JOB_TIMEOUT_S)
            last_run_at: datetime | None = await conn.fetchval(
                _LOCK_ROW_SQL, job, timeout=JOB_TIMEOUT_S
            )
            if last_run_at is not None and last_run_at >= fire:
                self._done[job] = last_run_at
                return None
            run = JobRun(job=job, fire_time=fire, counts=await JOBS[job](conn, settings))
            await conn.execute(_RECORD_SQL, job, fire, run.result, timeout=JOB_TIMEOUT_S)
        self._done[job] = fire
        return run


def _iso(times: Mapping[str, datetime | None]) -> dict[str, str | None]:
    return {job: time.isoformat() if time else None for job, time in times.items()}


async def _unless_stopped(work: Coroutine[Any, Any, T], stopping: asyncio.Event) -> T | None:
    """Await ``work``; if ``stopping`` is set first, cancel it (its transaction rolls back)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (task, stop):
            waiter.cancel()
        await asyncio.gather(task, stop, return_exceptions=True)
    return None if task.cancelled() else task.result()


async def _wait_any(events: Sequence[asyncio.Event], wait_s: float) -> None:
    """Return when any of ``events`` is set or after ``wait_s`` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
