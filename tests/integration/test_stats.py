"""Queue statistics on a real database: every figure checked against hand counts and plain SQL."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from embedworker.db.connect import create_pool
from embedworker.db.stats import STATUSES, queue_status, to_json_dict

STUDIFY_KEYS = {"total", "byStatus", "byPriority", "byContentType", "recentItems"}
EXTRA_KEYS = {"oldestDueAgeSeconds", "due", "scheduledLater", "stranded", "failedByError"}

_INSERT = """
INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash, priority,
                             status, scheduled_at, retry_count, max_retries, error_message,
                             updated_at)
VALUES ($1, $2::bigint, 'text ' || $2::bigint, md5('text ' || $2::bigint), $3, $4,
        now() + make_interval(secs => $5), $6, $7, $8, now() + make_interval(secs => $9))
RETURNING id
"""


async def add(
    db: asyncpg.Connection,
    content_type: str,
    content_id: int,
    *,
    status: str = "queued",
    priority: int = 5,
    scheduled_in_s: float = -60.0,
    retry_count: int = 0,
    max_retries: int = 3,
    error: str | None = None,
    updated_in_s: float = -60.0,
) -> int:
    """Insert one queue row; times are offsets from now() in seconds."""
    row_id: int = await db.fetchval(
        _INSERT, content_type, content_id, priority, status, scheduled_in_s, retry_count,
        max_retries, error, updated_in_s,
    )
    return row_id


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=2)
    yield pool
    await pool.close()


async def test_empty_queue(db: asyncpg.Connection) -> None:
    status = await queue_status(db)

    assert status.total == 0
    assert dict(status.by_status) == dict.fromkeys(STATUSES, 0)
    assert status.by_priority == {}
    assert status.by_content_type == {}
    assert (status.due, status.scheduled_later, status.stranded) == (0, 0, 0)
    assert status.oldest_due_age_s is None
    assert status.failed_by_error == ()
    assert status.recent == ()
    assert json.loads(json.dumps(to_json_dict(status)))["oldestDueAgeSeconds"] is None


async def test_hand_made_queue(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    due_old = await add(db, "post", 1, priority=1, scheduled_in_s=-3600, updated_in_s=-3600)
    await add(db, "post", 2, priority=5, scheduled_in_s=-10)
    await add(db, "post", 3, priority=5, retry_count=4, max_retries=5)  # due: one retry left
    await add(db, "comment", 1, priority=7, scheduled_in_s=600)  # later
    await add(db, "comment", 2, priority=7, retry_count=3, max_retries=3)  # stranded
    await add(db, "comment", 3, priority=7, retry_count=5, scheduled_in_s=600)  # stranded
    await add(db, "course", 1, status="processing", priority=2)
    await add(db, "course", 2, status="completed", priority=2, updated_in_s=-1)
    await add(db, "lesson", 1, status="failed", priority=10, retry_count=3, error="e5: HTTP 422")
    await add(db, "lesson", 2, status="failed", priority=10, retry_count=3, error="e5: HTTP 422")
    await add(db, "lesson", 3, status="failed", priority=10, error="empty text after cleaning")
    newest = await add(db, "lesson", 4, status="failed", priority=10, updated_in_s=-0.5)

    for source in (db, pool):
        status = await queue_status(source)

        assert status.total == 12
        assert dict(status.by_status) == {
            "queued": 6, "processing": 1, "completed": 1, "failed": 4,
        }
        assert dict(status.by_priority) == {1: 1, 2: 2, 5: 2, 7: 3, 10: 4}
        assert list(status.by_content_type.items()) == [
            ("lesson", 4), ("comment", 3), ("post", 3), ("course", 2),
        ]
        assert (status.due, status.scheduled_later, status.stranded) == (3, 1, 2)
        assert status.oldest_due_age_s is not None
        assert 3600 <= status.oldest_due_age_s < 3600 + 60
        assert status.failed_by_error == (
            ("e5: HTTP 422", 2), ("empty text after cleaning", 1), (None, 1),
        )
        assert len(status.recent) == 10
        assert status.recent[0].id == newest
        assert status.recent[0].content_type == "lesson"
        assert status.recent[0].status == "failed"
        assert status.recent[1].content_type == "course"
        assert due_old not in {item.id for item in status.recent}
        updated = [item.updated_at for item in status.recent if item.updated_at is not None]
        assert len(updated) == 10
        assert updated == sorted(updated, reverse=True)


async def test_figures_equal_independent_sql(db: asyncpg.Connection) -> None:
    rng = random.Random(7)
    errors = ["e5_small: HTTP 422: input too long", "bge_m3: malformed answer",
              "empty text after cleaning", "lease expired 5 times", None]
    for n in range(400):
        state = rng.choice(STATUSES)
        max_retries = rng.choice([1, 3, 5])
        await add(
            db,
            rng.choice(["post", "comment", "course", "lesson", "quiz_question"]),
            n,
            status=state,
            priority=rng.randint(1, 10),
            scheduled_in_s=rng.choice([-1, 1]) * rng.uniform(120, 86400),
            retry_count=rng.randint(0, 6),
            max_retries=max_retries,
            error=rng.choice(errors) if state == "failed" else None,
            updated_in_s=-rng.uniform(0, 86400),
        )

    status = await queue_status(db)

    def grouped(rows: list[asyncpg.Record]) -> dict[object, int]:
        return {row[0]: row[1] for row in rows}

    assert status.total == await db.fetchval("SELECT count(*) FROM embedding_queue")
    assert dict(status.by_status) == grouped(
        await db.fetch("SELECT status, count(*) FROM embedding_queue GROUP BY status")
    )
    assert dict(status.by_priority) == grouped(
        await db.fetch("SELECT priority, count(*) FROM embedding_queue GROUP BY priority")
    )
    assert dict(status.by_content_type) == grouped(
        await db.fetch("SELECT content_type, count(*) FROM embedding_queue GROUP BY 1")
    )
    queued = "SELECT count(*) FROM embedding_queue WHERE status = 'queued' AND "
    assert status.due == await db.fetchval(
        queued + "scheduled_at <= now() AND retry_count < max_retries"
    )
    assert status.scheduled_later == await db.fetchval(
        queued + "scheduled_at > now() AND retry_count < max_retries"
    )
    assert status.stranded == await db.fetchval(queued + "retry_count >= max_retries")
    assert status.due + status.scheduled_later + status.stranded == status.by_status["queued"]
    assert status.due > 0
    assert status.scheduled_later > 0
    assert status.stranded > 0

    oldest_due: datetime = await db.fetchval(
        "SELECT min(scheduled_at) FROM embedding_queue WHERE status = 'queued'"
        " AND scheduled_at <= now() AND retry_count < max_retries"
    )
    assert status.oldest_due_age_s is not None
    assert status.oldest_due_age_s == pytest.approx(
        (status.as_of - oldest_due).total_seconds(), abs=0.01
    )

    failed = await db.fetch("SELECT error_message FROM embedding_queue WHERE status = 'failed'")
    counts = Counter(row["error_message"] for row in failed)
    assert dict(status.failed_by_error) == dict(counts)
    assert [n for _, n in status.failed_by_error] == sorted(counts.values(), reverse=True)

    rows = await db.fetch("SELECT id, updated_at FROM embedding_queue")
    newest = sorted(rows, key=lambda row: (row["updated_at"], row["id"]), reverse=True)[:10]
    assert [item.id for item in status.recent] == [row["id"] for row in newest]


async def test_top_twenty_errors(db: asyncpg.Connection) -> None:
    for n in range(25):
        for copy in range(1 + n % 3):
            await add(db, "post", n * 10 + copy, status="failed", error=f"error {n:02d}")

    status = await queue_status(db)

    assert len(status.failed_by_error) == 20
    assert [count for _, count in status.failed_by_error[:8]] == [3] * 8
    assert status.failed_by_error[0] == ("error 02", 3)


async def test_studify_nullable_columns(db: asyncpg.Connection) -> None:
    """On a Studify table scheduled_at, retry_count and max_retries may be NULL."""
    await db.execute(
        "ALTER TABLE embedding_queue ALTER COLUMN scheduled_at DROP NOT NULL,"
        " ALTER COLUMN retry_count DROP NOT NULL, ALTER COLUMN max_retries DROP NOT NULL"
    )
    await add(db, "post", 1)
    no_max = await add(db, "post", 2, retry_count=2)
    spent_default = await add(db, "post", 3, retry_count=3)
    no_schedule = await add(db, "post", 4)
    no_retries = await add(db, "post", 5)
    await db.execute("UPDATE embedding_queue SET max_retries = NULL WHERE id = ANY($1::bigint[])",
                     [no_max, spent_default])
    await db.execute("UPDATE embedding_queue SET scheduled_at = NULL WHERE id = $1", no_schedule)
    await db.execute("UPDATE embedding_queue SET retry_count = NULL WHERE id = $1", no_retries)

    status = await queue_status(db)
    assert (status.due, status.scheduled_later, status.stranded) == (3, 0, 2)

    lenient = await queue_status(db, default_max_retries=10)
    assert (lenient.due, lenient.scheduled_later, lenient.stranded) == (4, 0, 1)


async def test_json_has_studify_keys_and_serialises(db: asyncpg.Connection) -> None:
    await add(db, "post", 1, priority=2)
    await add(db, "post", 2, status="failed", error="bge_m3: HTTP 400: bad input")

    payload = to_json_dict(await queue_status(db))
    decoded = json.loads(json.dumps(payload))

    assert set(decoded) >= STUDIFY_KEYS | EXTRA_KEYS
    assert decoded["total"] == 2
    assert decoded["byStatus"] == {"queued": 1, "processing": 0, "completed": 0, "failed": 1}
    assert decoded["byPriority"] == {"2": 1, "5": 1}
    assert decoded["byContentType"] == {"post": 2}
    assert decoded["failedByError"] == [{"error": "bge_m3: HTTP 400: bad input", "count": 1}]
    assert decoded["due"] == 1
    assert decoded["oldestDueAgeSeconds"] >= 60
    item = decoded["recentItems"][0]
    assert {"status", "priority", "contentType", "createdAt"} <= set(item)
    assert {"id", "contentId", "retryCount", "errorMessage", "updatedAt"} <= set(item)
    assert datetime.fromisoformat(item["updatedAt"]).tzinfo is not None
    assert datetime.fromisoformat(decoded["asOf"]).tzinfo is not None
