"""`embedworker reembed MODEL`: queue every live embeddings row whose vector of MODEL is missing
or of another version.

The table is walked by id in chunks, each chunk one statement (its own short transaction), so
nothing is locked for long and a run can be stopped and repeated. The daemon then calls only the
models whose vector is not current for such an item (the claim knows which are), so the other
models' current vectors are kept and those models are not called. Old vectors stay in place
until their replacement is written.

A queue row that is already 'queued' or 'processing' is left as it is (it will be embedded
anyway); a 'completed' or 'failed' one is queued again with fresh retries, keeping its own text.
Re-embed work goes in at REEMBED_PRIORITY, behind fresh content (priority 5 by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from embedworker.db.coverage import LIVE_ROWS
from embedworker.db.vectors import ModelColumns, current

REEMBED_PRIORITY = 10
DEFAULT_CHUNK_SIZE = 1000


@dataclass(frozen=True)
class ReembedProgress:
    """Running totals of one `reembed`: rows read, rows that need the model, rows queued now,
    and rows that were already waiting in the queue."""

    scanned: int = 0
    needed: int = 0
    queued: int = 0
    already_queued: int = 0

    def plus(self, scanned: int, needed: int, queued: int) -> ReembedProgress:
        return ReembedProgress(
            scanned=self.scanned + scanned,
            needed=self.needed + needed,
            queued=self.queued + queued,
            already_queued=self.already_queued + needed - queued,
        )


def _chunk_sql(model: ModelColumns) -> str:
    return f"""
WITH chunk AS (
    SELECT e.id, e.content_type, e.content_id, e.content_text, e.content_hash,
           NOT {current(model)} AND e.content_text IS NOT NULL AND e.content_hash IS NOT NULL
               AS needed
    FROM embeddings e
    WHERE ($1::bigint IS NULL OR e.id > $1)
      AND ($2::text IS NULL OR e.content_type = $2)
      AND {LIVE_ROWS}
    ORDER BY e.id
    LIMIT $3
), queued AS (
    INSERT INTO embedding_queue AS q
        (content_type, content_id, content_text, content_hash, priority, status,
         scheduled_at, retry_count, error_message)
    SELECT content_type, content_id, content_text, content_hash, $4, 'queued', now(), 0, NULL
    FROM chunk
    WHERE needed
    ORDER BY id
    ON CONFLICT (content_type, content_id) DO UPDATE
        SET status = 'queued',
            priority = EXCLUDED.priority,
            scheduled_at = now(),
            retry_count = 0,
            error_message = NULL,
            processing_started_at = NULL,
            lease_token = NULL,
            lease_expires_at = NULL,
            reclaim_count = 0,
            waiting_for = NULL,
            updated_at = now()
        WHERE q.status IN ('completed', 'failed')
    RETURNING 1
)
SELECT (SELECT max(id) FROM chunk) AS last_id,
       (SELECT count(*) FROM chunk) AS scanned,
       (SELECT count(*) FROM chunk WHERE needed) AS needed,
       (SELECT count(*) FROM queued) AS queued
"""


async def reembed(
    conn: asyncpg.Connection,
    model: ModelColumns,
    *,
    content_type: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    priority: int = REEMBED_PRIORITY,
    on_progress: Callable[[ReembedProgress], None] | None = None,
) -> ReembedProgress:
    """Queue the rows that need ``model`` (of ``content_type`` only, if given)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    sql = _chunk_sql(model)
    progress = ReembedProgress()
    after: int | None = None
    while True:
        row = await conn.fetchrow(sql, after, content_type, chunk_size, priority)
        assert row is not None
        if row["last_id"] is None:
            return progress
        after = row["last_id"]
        progress = progress.plus(row["scanned"], row["needed"], row["queued"])
        if on_progress is not None:
            on_progress(progress)
