"""The SQL of the maintenance jobs: cleanup, retry_failed and reset_stuck.

Each job is one statement, so it is atomic on its own and can also run inside a caller's
transaction (the scheduler runs it in the transaction that holds the job's schedule row).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol


class Executor(Protocol):
    """What the jobs need of asyncpg: a Connection, a Pool, or a pool's connection."""

    def execute(self, query: str, *args: object, timeout: float | None = ...) -> Awaitable[str]: ...

    def fetchval(
        self, query: str, *args: object, column: int = ..., timeout: float | None = ...
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class CleanupCounts:
    completed_deleted: int
    failed_deleted: int


_CLEANUP_SQL = """
WITH deleted AS (
    DELETE FROM embedding_queue
    WHERE (status = 'completed' AND updated_at < now() - $1::float8 * interval '24 hours')
       OR (status = 'failed' AND updated_at < now() - $2::float8 * interval '24 hours')
    RETURNING status
)
SELECT ARRAY[count(*) FILTER (WHERE status = 'completed'),
             count(*) FILTER (WHERE status = 'failed')]::bigint[]
FROM deleted
"""

# Shared by retry_failed and reset_stuck: a fresh start, as if the item had just been queued.
# With $2 (the default max_retries) it also takes the stranded rows: 'queued' but never
# claimable, because their retries are spent (the old pipeline left rows so) or their
# scheduled_at is NULL.
_REQUEUE_SQL = """
UPDATE embedding_queue
SET status = 'queued',
    retry_count = 0,
    reclaim_count = 0,
    error_message = NULL,
    scheduled_at = now(),
    processing_started_at = NULL,
    lease_token = NULL,
    lease_expires_at = NULL,
    waiting_for = NULL,
    updated_at = now()
WHERE status = ANY($1::text[])
   OR (status = 'queued' AND $2::int IS NOT NULL AND waiting_for IS NULL
       AND (coalesce(retry_count, 0) >= coalesce(max_retries, $2) OR scheduled_at IS NULL))
"""


async def cleanup(
    conn: Executor,
    completed_retention_days: float,
    failed_retention_days: float,
    *,
    timeout_s: float | None = None,
) -> CleanupCounts:
    """Delete queue rows 'completed' longer ago than their retention, and 'failed' ones likewise.

    Age is ``updated_at``; 'queued' and 'processing' rows and the embeddings table are untouched.
    """
    counts: list[int] = await conn.fetchval(
        _CLEANUP_SQL,
        float(completed_retention_days),
        float(failed_retention_days),
        timeout=timeout_s,
    )
    return CleanupCounts(completed_deleted=counts[0], failed_deleted=counts[1])


async def retry_failed(
    conn: Executor, default_max_retries: int, *, timeout_s: float | None = None
) -> int:
    """Put every 'failed' row, and every stranded 'queued' row, back to 'queued' with its
    retries reset; returns how many."""
    return _rowcount(
        await conn.execute(_REQUEUE_SQL, ["failed"], default_max_retries, timeout=timeout_s)
    )


async def reset_stuck(conn: Executor, *, timeout_s: float | None = None) -> int:
    """Put every 'processing' and 'failed' row back to 'queued' (the old system's reset).

    A batch still at work on one of these rows loses it: its lease is cleared, so the lease
    check of its finish writes nothing for that row and the item is embedded again.
    """
    return _rowcount(
        await conn.execute(_REQUEUE_SQL, ["processing", "failed"], None, timeout=timeout_s)
    )


def _rowcount(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3``."""
    return int(status.split()[-1])
