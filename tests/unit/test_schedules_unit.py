"""Unit tests of the schedule arithmetic: which fire time is due, and when to wake next."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from embedworker.config import ScheduleSettings, Settings
from embedworker.schedules import (
    MAX_WAIT_S,
    RETRY_AFTER_S,
    JobRun,
    Scheduler,
    due_fire_time,
    latest_fire_time,
    next_fire_time,
    seconds_to_wake,
)

DAILY = "0 2 * * *"
WEEKLY = "0 3 * * 0"
NOW = datetime(2030, 1, 9, 12, 0, tzinfo=UTC)  # a Wednesday


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, second, tzinfo=UTC)


def settings(cleanup: str = DAILY, retry_failed: str = WEEKLY) -> Settings:
    return Settings(
        database_url="postgresql://unit@localhost/none",
        models={},
        schedules=ScheduleSettings(cleanup=cleanup, retry_failed=retry_failed),
    )


def test_latest_fire_time_is_at_or_before_now() -> None:
    assert latest_fire_time(DAILY, NOW) == at(9, 2)
    assert latest_fire_time(DAILY, at(9, 1, 59, 59)) == at(8, 2)
    assert latest_fire_time(WEEKLY, NOW) == at(6, 3)


def test_a_fire_time_equal_to_now_counts_as_reached() -> None:
    assert latest_fire_time(DAILY, at(9, 2)) == at(9, 2)
    assert due_fire_time(DAILY, at(9, 2), at(8, 2)) == at(9, 2)


def test_next_fire_time_is_strictly_after_now() -> None:
    assert next_fire_time(DAILY, NOW) == at(10, 2)
    assert next_fire_time(DAILY, at(9, 2)) == at(10, 2)
    assert next_fire_time(WEEKLY, NOW) == at(13, 3)


def test_cron_is_read_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 11:00 in Tokyo is 02:00 UTC.
    assert latest_fire_time(DAILY, datetime(2030, 1, 9, 11, 0, tzinfo=tokyo)) == at(9, 2)
    assert latest_fire_time(DAILY, NOW).tzinfo is not None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        latest_fire_time(DAILY, datetime(2030, 1, 9, 12, 0))


@pytest.mark.parametrize(
    ("last_run_at", "due"),
    [
        (None, at(9, 2)),  # never run: the latest fire time
        (at(8, 2), at(9, 2)),  # one fire time missed
        (at(1, 2), at(9, 2)),  # eight missed: still one run, for the latest
        (at(9, 2), None),  # ran for the latest already
        (at(9, 11), None),  # ran later than that (e.g. under another cron before a reload)
    ],
)
def test_due_fire_time(last_run_at: datetime | None, due: datetime | None) -> None:
    assert due_fire_time(DAILY, NOW, last_run_at) == due


def test_a_disabled_job_is_never_due() -> None:
    assert due_fire_time("", NOW, None) is None


def test_job_run_result_is_short_text() -> None:
    run = JobRun("cleanup", at(9, 2), {"completed_deleted": 3, "failed_deleted": 0})
    assert run.result == "completed_deleted=3 failed_deleted=0"


def test_next_run_and_reload() -> None:
    scheduler = Scheduler(pool=_no_pool(), settings=settings())
    assert scheduler.next_run(NOW) == {"cleanup": at(10, 2), "retry_failed": at(13, 3)}

    scheduler.reload(settings(cleanup="*/15 * * * *", retry_failed=""))

    assert scheduler.next_run(NOW) == {"cleanup": at(9, 12, 15), "retry_failed": None}


async def test_run_with_every_job_off_waits_until_stopped() -> None:
    scheduler = Scheduler(pool=_no_pool(), settings=settings(cleanup="", retry_failed=""))
    stopping = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stopping))
    await asyncio.sleep(0)
    assert not task.done()

    stopping.set()
    await asyncio.wait_for(task, timeout=1)


def test_seconds_to_wake() -> None:
    assert seconds_to_wake([DAILY, WEEKLY], at(10, 1, 59), retrying=False) == 60
    assert seconds_to_wake([DAILY, ""], NOW, retrying=False) == MAX_WAIT_S
    assert seconds_to_wake(["", ""], NOW, retrying=False) == MAX_WAIT_S
    assert seconds_to_wake([DAILY], NOW, retrying=True) == RETRY_AFTER_S
    assert seconds_to_wake(["* * * * *"], at(9, 12, 0, 30), retrying=True) == 30


def _no_pool() -> Any:
    """Stands in for the pool where no job is due, so nothing may touch it."""
    return object()
