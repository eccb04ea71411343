"""The maintenance jobs and their scheduler on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.db import maintenance
from embedworker.db.connect import create_pool
from embedworker.schedules import Scheduler, latest_fire_time
from tests.helpers import insert_items, wait_until

DAILY = "0 2 * * *"
NOW = datetime(2030, 1, 9, 12, 0, tzinfo=UTC)  # a Wednesday; DAILY last fired 2030-01-09 02:00


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=3)
    yield pool
    await pool.close()


@pytest.fixture
def cleanup_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Only cleanup on, daily at 02:00; completed rows kept 7 days, failed ones 30."""
    return make_settings(
        schedules={"cleanup": DAILY, "retry_failed": ""},
        completed_retention_days=7,
        failed_retention_days=30,
    )


async def add_rows(db: asyncpg.Connection, spec: dict[str, tuple[str, float]]) -> dict[str, int]:
    """Queue rows named by their text, each with a status and an age in days (updated_at)."""
    ids = await insert_items(db, list(spec))
    for row_id, (status, age_days) in zip(ids, spec.values(), strict=True):
        await db.execute(
            "UPDATE embedding_queue SET status = $2,"
            " updated_at = now() - $3::float8 * interval '24 hours' WHERE id = $1",
            row_id,
            status,
            age_days,
        )
    return dict(zip(spec, ids, strict=True))


async def queue_ids(db: asyncpg.Connection) -> set[int]:
    return {row["id"] for row in await db.fetch("SELECT id FROM embedding_queue")}


async def schedule_row(db: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT last_run_at, last_result FROM embedworker_schedules WHERE name = $1", name
    )


async def last_run_at(db: asyncpg.Connection, name: str) -> datetime | None:
    row = await schedule_row(db, name)
    return None if row is None else row["last_run_at"]


async def lock_waiters(db: asyncpg.Connection) -> int:
    """Sessions of this database waiting for a lock (``db`` may be inside a transaction)."""
    await db.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return count


# --- the jobs ----------------------------------------------------------------------------


async def test_cleanup_deletes_only_old_completed_and_failed_rows(
    db: asyncpg.Connection,
) -> None:
    ids = await add_rows(
        db,
        {
            "completed old": ("completed", 8),
            "completed recent": ("completed", 6),
            "failed old": ("failed", 31),
            "failed recent": ("failed", 29),
            "queued ancient": ("queued", 400),
            "processing ancient": ("processing", 400),
        },
    )
    await db.execute(
        "INSERT INTO embeddings (content_type, content_id, content_hash, content_text)"
        " SELECT content_type, content_id, content_hash, content_text FROM embedding_queue"
    )

    counts = await maintenance.cleanup(db, 7, 30)

    assert counts == maintenance.CleanupCounts(completed_deleted=1, failed_deleted=1)
    assert await queue_ids(db) == {
        ids["completed recent"],
        ids["failed recent"],
        ids["queued ancient"],
        ids["processing ancient"],
    }
    assert await db.fetchval("SELECT count(*) FROM embeddings") == 6


async def test_cleanup_takes_fractional_days_and_a_pool(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    ids = await add_rows(
        db,
        {
            "13 hours": ("completed", 13 / 24),
            "11 hours": ("completed", 11 / 24),
            "failed 2 days": ("failed", 2),
        },
    )

    counts = await maintenance.cleanup(pool, 0.5, 1.5)

    assert counts == maintenance.CleanupCounts(completed_deleted=1, failed_deleted=1)
    assert await queue_ids(db) == {ids["11 hours"]}


async def test_cleanup_with_nothing_old_deletes_nothing(db: asyncpg.Connection) -> None:
    await add_rows(db, {"fresh": ("completed", 0.1), "fresh failure": ("failed", 0.1)})

    assert await maintenance.cleanup(db, 7, 30) == maintenance.CleanupCounts(0, 0)
    assert len(await queue_ids(db)) == 2


async def prepare_every_status(db: asyncpg.Connection) -> dict[str, int]:
    """One row per status; 'failed' and 'processing' carry retries, an error and a lease."""
    ids = await add_rows(
        db,
        {
            "queued": ("queued", 1),
            "processing": ("processing", 1),
            "completed": ("completed", 1),
            "failed": ("failed", 1),
        },
    )
    await db.execute(
        "UPDATE embedding_queue SET retry_count = 3, reclaim_count = 2, error_message = 'boom',"
        " scheduled_at = now() + interval '1 hour', processing_started_at = now(),"
        " lease_token = gen_random_uuid(), lease_expires_at = now() + interval '30 seconds'"
        " WHERE status IN ('processing', 'failed')"
    )
    await db.execute(
        "UPDATE embedding_queue SET retry_count = 1, error_message = 'earlier'"
        " WHERE status IN ('queued', 'completed')"
    )
    return ids


async def rows_by_id(db: asyncpg.Connection) -> dict[int, dict[str, Any]]:
    rows = await db.fetch("SELECT *, now() AS db_now FROM embedding_queue")
    return {row["id"]: dict(row) for row in rows}


def assert_requeued(row: dict[str, Any]) -> None:
    assert row["status"] == "queued"
    assert row["retry_count"] == 0
    assert row["reclaim_count"] == 0
    assert row["error_message"] is None
    assert row["scheduled_at"] <= row["db_now"]
    assert row["scheduled_at"] >= row["db_now"] - timedelta(minutes=1)
    assert row["lease_token"] is None
    assert row["lease_expires_at"] is None
    assert row["processing_started_at"] is None


async def test_retry_failed_requeues_only_failed_rows(db: asyncpg.Connection) -> None:
    ids = await prepare_every_status(db)
    before = await rows_by_id(db)

    assert await maintenance.retry_failed(db, 3) == 1

    after = await rows_by_id(db)
    assert_requeued(after[ids["failed"]])
    for name in ("queued", "processing", "completed"):
        unchanged = {k: v for k, v in after[ids[name]].items() if k != "db_now"}
        assert unchanged == {k: v for k, v in before[ids[name]].items() if k != "db_now"}


async def test_retry_failed_revives_stranded_queued_rows(db: asyncpg.Connection) -> None:
    ids = await add_rows(db, {"spent": ("queued", 0), "unscheduled": ("queued", 0),
                              "own limit": ("queued", 0), "claimable": ("queued", 0)})
    # Studify's own schema lets scheduled_at and max_retries be NULL; ours does not.
    await db.execute("ALTER TABLE embedding_queue ALTER COLUMN scheduled_at DROP NOT NULL,"
                     " ALTER COLUMN max_retries DROP NOT NULL")
    await db.execute("UPDATE embedding_queue SET retry_count = 3, max_retries = NULL"
                     " WHERE id = $1", ids["spent"])
    await db.execute("UPDATE embedding_queue SET scheduled_at = NULL WHERE id = $1",
                     ids["unscheduled"])
    await db.execute("UPDATE embedding_queue SET retry_count = 5, max_retries = 5"
                     " WHERE id = $1", ids["own limit"])
    await db.execute("UPDATE embedding_queue SET retry_count = 2, max_retries = 5,"
                     " scheduled_at = now() + interval '1 hour' WHERE id = $1", ids["claimable"])
    before = await rows_by_id(db)

    assert await maintenance.retry_failed(db, 3) == 3

    after = await rows_by_id(db)
    for name in ("spent", "unscheduled", "own limit"):
        assert_requeued(after[ids[name]])
    claimable = {k: v for k, v in after[ids["claimable"]].items() if k != "db_now"}
    assert claimable == {k: v for k, v in before[ids["claimable"]].items() if k != "db_now"}


async def test_reset_stuck_requeues_processing_and_failed_rows(db: asyncpg.Connection) -> None:
    ids = await prepare_every_status(db)
    before = await rows_by_id(db)

    assert await maintenance.reset_stuck(db) == 2

    after = await rows_by_id(db)
    assert_requeued(after[ids["failed"]])
    assert_requeued(after[ids["processing"]])
    for name in ("queued", "completed"):
        unchanged = {k: v for k, v in after[ids[name]].items() if k != "db_now"}
        assert unchanged == {k: v for k, v in before[ids[name]].items() if k != "db_now"}
    assert await maintenance.reset_stuck(db) == 0


# --- the scheduler -----------------------------------------------------------------------


async def test_a_job_never_run_runs_at_once_and_then_not_again(
    db: asyncpg.Connection, pool: asyncpg.Pool, cleanup_settings: Settings
) -> None:
    ids = await add_rows(db, {"old": ("completed", 8), "new": ("completed", 1)})
    scheduler = Scheduler(pool, cleanup_settings)

    runs = await scheduler.run_due(NOW)

    fire = datetime(2030, 1, 9, 2, 0, tzinfo=UTC)
    assert [(r.job, r.fire_time, dict(r.counts)) for r in runs] == [
        ("cleanup", fire, {"completed_deleted": 1, "failed_deleted": 0})
    ]
    assert await queue_ids(db) == {ids["new"]}
    row = await schedule_row(db, "cleanup")
    assert row is not None
    assert row["last_run_at"] == fire
    assert row["last_result"] == "completed_deleted=1 failed_deleted=0"

    await add_rows(db, {"old again": ("completed", 8)})
    assert await scheduler.run_due(NOW + timedelta(minutes=1)) == []
    # Not only this instance's memory: another worker sees the run too.
    assert await Scheduler(pool, cleanup_settings).run_due(NOW + timedelta(hours=13)) == []
    assert len(await queue_ids(db)) == 2
    assert await last_run_at(db, "cleanup") == fire


async def test_several_missed_fire_times_make_one_run(
    db: asyncpg.Connection, pool: asyncpg.Pool, cleanup_settings: Settings
) -> None:
    await db.execute(
        "INSERT INTO embedworker_schedules (name, last_run_at) VALUES ('cleanup', $1)",
        NOW - timedelta(days=10),
    )
    await add_rows(db, {"old 1": ("completed", 8), "old 2": ("failed", 40)})

    runs = await Scheduler(pool, cleanup_settings).run_due(NOW)

    assert [(r.job, dict(r.counts)) for r in runs] == [
        ("cleanup", {"completed_deleted": 1, "failed_deleted": 1})
    ]
    assert await last_run_at(db, "cleanup") == latest_fire_time(DAILY, NOW)
    assert await Scheduler(pool, cleanup_settings).run_due(NOW) == []


@pytest.mark.parametrize("row_locked_first", [False, True])
async def test_two_workers_run_a_scheduled_job_once(
    db: asyncpg.Connection,
    database_url: str,
    cleanup_settings: Settings,
    row_locked_first: bool,
) -> None:
    await add_rows(db, {f"old {n}": ("completed", 8) for n in range(5)})
    pools = [await create_pool(database_url, max_size=2) for _ in range(2)]
    try:
        schedulers = [Scheduler(pool, cleanup_settings) for pool in pools]
        if row_locked_first:
            # Both workers reach the row lock before either can run the job.
            await db.execute("INSERT INTO embedworker_schedules (name) VALUES ('cleanup')")
            async with db.transaction():
                await db.execute(
                    "SELECT 1 FROM embedworker_schedules WHERE name = 'cleanup' FOR UPDATE"
                )
                both = asyncio.gather(*(s.run_due(NOW) for s in schedulers))
                await wait_until(lambda: _waiting(db, 2))
            results = await both
        else:
            results = await asyncio.gather(*(s.run_due(NOW) for s in schedulers))
    finally:
        for pool in pools:
            await pool.close()

    runs = [run for result in results for run in result]
    assert len(runs) == 1
    assert sum(run.counts["completed_deleted"] for run in runs) == 5
    assert await queue_ids(db) == set()
    assert await last_run_at(db, "cleanup") == latest_fire_time(DAILY, NOW)


async def _waiting(db: asyncpg.Connection, count: int) -> bool:
    return await lock_waiters(db) >= count


async def test_a_disabled_job_never_runs(
    db: asyncpg.Connection, pool: asyncpg.Pool, make_settings: Callable[..., Settings]
) -> None:
    ids = await add_rows(db, {"old": ("completed", 8), "failure": ("failed", 1)})
    scheduler = Scheduler(pool, make_settings(schedules={"cleanup": "", "retry_failed": ""}))

    assert await scheduler.run_due(NOW) == []
    assert await scheduler.run_due(NOW + timedelta(days=30)) == []

    assert await queue_ids(db) == set(ids.values())
    assert (
        await db.fetchval("SELECT status FROM embedding_queue WHERE id = $1", ids["failure"])
        == "failed"
    )
    assert await db.fetchval("SELECT count(*) FROM embedworker_schedules") == 0
    assert scheduler.next_run(NOW) == {"cleanup": None, "retry_failed": None}


async def test_both_jobs_cleanup_first(
    db: asyncpg.Connection, pool: asyncpg.Pool, make_settings: Callable[..., Settings]
) -> None:
    ids = await add_rows(db, {"failed old": ("failed", 40), "failed recent": ("failed", 2)})
    settings = make_settings(schedules={"cleanup": DAILY, "retry_failed": "0 3 * * 0"})

    runs = await Scheduler(pool, settings).run_due(NOW)

    assert [(r.job, dict(r.counts)) for r in runs] == [
        ("cleanup", {"completed_deleted": 0, "failed_deleted": 1}),
        ("retry_failed", {"requeued": 1}),
    ]
    assert (
        await db.fetchval("SELECT status FROM embedding_queue WHERE id = $1", ids["failed recent"])
        == "queued"
    )
    assert await last_run_at(db, "retry_failed") == datetime(2030, 1, 6, 3, 0, tzinfo=UTC)


async def test_reload_with_a_new_cron_takes_effect(
    db: asyncpg.Connection,
    pool: asyncpg.Pool,
    make_settings: Callable[..., Settings],
    cleanup_settings: Settings,
) -> None:
    scheduler = Scheduler(pool, cleanup_settings)
    assert [r.job for r in await scheduler.run_due(NOW)] == ["cleanup"]
    assert scheduler.next_run(NOW)["cleanup"] == datetime(2030, 1, 10, 2, 0, tzinfo=UTC)

    scheduler.reload(make_settings(schedules={"cleanup": "0 11 * * *", "retry_failed": ""}))

    assert scheduler.next_run(NOW)["cleanup"] == datetime(2030, 1, 10, 11, 0, tzinfo=UTC)
    assert [r.fire_time for r in await scheduler.run_due(NOW)] == [
        datetime(2030, 1, 9, 11, 0, tzinfo=UTC)
    ]
    assert await last_run_at(db, "cleanup") == datetime(2030, 1, 9, 11, 0, tzinfo=UTC)


async def test_a_database_error_is_retried_at_the_next_pass(
    db: asyncpg.Connection, pool: asyncpg.Pool, cleanup_settings: Settings
) -> None:
    await add_rows(db, {"old": ("completed", 8)})
    await db.execute("ALTER TABLE embedworker_schedules RENAME TO schedules_away")
    scheduler = Scheduler(pool, cleanup_settings)

    assert await scheduler.run_due(NOW) == []
    assert len(await queue_ids(db)) == 1

    await db.execute("ALTER TABLE schedules_away RENAME TO embedworker_schedules")
    assert [r.job for r in await scheduler.run_due(NOW)] == ["cleanup"]
    assert await queue_ids(db) == set()


# --- the loop ----------------------------------------------------------------------------


async def test_run_wakes_on_reload_and_stops_promptly(
    db: asyncpg.Connection, pool: asyncpg.Pool, make_settings: Callable[..., Settings]
) -> None:
    await add_rows(db, {"old": ("completed", 8), "failure": ("failed", 1)})
    # Only the weekly retry_failed at first: it has never run, so the first pass runs it.
    settings = make_settings(schedules={"cleanup": "", "retry_failed": "0 3 * * 0"})
    scheduler = Scheduler(pool, settings)
    stopping = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stopping))
    try:
        await wait_until(lambda: _has_run(db, "retry_failed"))
        assert len(await queue_ids(db)) == 2

        # The loop now waits for next Sunday (at most MAX_WAIT_S); only the reload wakes it.
        scheduler.reload(make_settings(schedules={"cleanup": "0 0 1 1 *", "retry_failed": ""}))
        await wait_until(lambda: _has_run(db, "cleanup"))
        assert len(await queue_ids(db)) == 1

        stopping.set()
        await asyncio.wait_for(task, timeout=2)
    finally:
        task.cancel()


async def test_run_stops_promptly_while_waiting_for_another_workers_lock(
    db: asyncpg.Connection, pool: asyncpg.Pool, cleanup_settings: Settings
) -> None:
    await db.execute("INSERT INTO embedworker_schedules (name) VALUES ('cleanup')")
    stopping = asyncio.Event()
    async with db.transaction():
        await db.execute("SELECT 1 FROM embedworker_schedules WHERE name = 'cleanup' FOR UPDATE")
        task = asyncio.create_task(Scheduler(pool, cleanup_settings).run(stopping))
        try:
            await wait_until(lambda: _waiting(db, 1))
            stopping.set()
            await asyncio.wait_for(task, timeout=2)
        finally:
            task.cancel()
    assert await last_run_at(db, "cleanup") is None


async def _has_run(db: asyncpg.Connection, name: str) -> bool:
    return await last_run_at(db, name) is not None
