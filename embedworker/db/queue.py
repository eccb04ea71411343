"""All SQL of the queue: claim, renew, finish, release and lease recovery.

Every write that ends a batch checks the batch's lease token, so a batch that lost its rows
(its lease expired, or the item's text changed and the trigger revoked the lease) writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from embedworker.db.connect import encode_vector
from embedworker.domain import Batch, Outcome, QueueItem
from embedworker.embedders.base import Embedding

_DEADLOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class ModelColumns:
    """Where one model's vectors live in ``embeddings``."""

    name: str
    column: str
    flag_column: str
    dimension: int


@dataclass(frozen=True)
class FinishCounts:
    completed: int
    retrying: int
    failed: int
    lost: int


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class QueueStore:
    """The queue's SQL, built once for the configured models."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        models: Sequence[ModelColumns],
        *,
        default_max_retries: int,
    ):
        self._pool = pool
        self._models = list(models)
        self._default_max_retries = default_max_retries
        self._claim_sql = _claim_sql(self._models)
        self._finish_sql = _finish_sql(self._models)

    async def validate(self) -> list[str]:
        """Problems that would make this store's SQL fail: missing or mis-sized columns."""
        problems = await check_model_columns(self._pool, self._models)
        if problems:
            return problems
        async with self._pool.acquire() as conn:
            for sql in (self._claim_sql, self._finish_sql):
                try:
                    await conn.prepare(sql)
                except asyncpg.PostgresError as exc:
                    problems.append(str(exc))
        return problems

    async def claim(self, limit: int, token: UUID, lease_s: float) -> Batch:
        """Take up to ``limit`` due items, most urgent first, under a new lease."""
        rows = await self._pool.fetch(
            self._claim_sql, limit, token, lease_s, self._default_max_retries
        )
        items = [
            QueueItem(
                id=row["id"],
                content_type=row["content_type"],
                content_id=row["content_id"],
                content_text=row["content_text"],
                content_hash=row["content_hash"],
                retry_count=row["retry_count"],
                max_retries=row["max_retries"],
                models_done=frozenset(
                    model.name
                    for model, done in zip(self._models, row["done"], strict=True)
                    if done
                ),
            )
            for row in rows
        ]
        return Batch(token=token, items=items)

    async def renew(self, token: UUID, lease_s: float) -> int:
        """Extend the lease of a batch still at work; returns how many rows it still holds."""
        result: str = await self._pool.execute(_RENEW_SQL, token, lease_s)
        return int(result.split()[-1])

    async def finish(
        self, token: UUID, outcomes: Sequence[Outcome], delays: Sequence[float]
    ) -> FinishCounts:
        """Write the queue statuses and the vectors of a batch in one statement."""
        for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
            try:
                return await self._finish_once(token, outcomes, delays)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _DEADLOCK_ATTEMPTS:
                    raise
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def _finish_once(
        self, token: UUID, outcomes: Sequence[Outcome], delays: Sequence[float]
    ) -> FinishCounts:
        rows = await self._pool.fetch(
            self._finish_sql,
            [o.item.id for o in outcomes],
            [o.succeeded for o in outcomes],
            [o.charge for o in outcomes],
            [o.final for o in outcomes],
            [_short(o.error) for o in outcomes],
            list(delays),
            token,
            self._default_max_retries,
            *([_encoded(o.vectors.get(model.name)) for o in outcomes] for model in self._models),
        )
        statuses = [row["status"] for row in rows]
        return FinishCounts(
            completed=statuses.count("completed"),
            retrying=statuses.count("queued"),
            failed=statuses.count("failed"),
            lost=len(outcomes) - len(rows),
        )

    async def release(self, tokens: Sequence[UUID]) -> int:
        """Give claimed rows back to the queue without spending a retry."""
        if not tokens:
            return 0
        result: str = await self._pool.execute(_RELEASE_SQL, list(tokens))
        return int(result.split()[-1])

    async def recover_expired(self, lease_s: float, max_reclaims: int) -> tuple[int, int]:
        """Re-queue rows whose lease ran out; fail those that expired ``max_reclaims`` times."""
        rows = await self._pool.fetch(_RECOVER_SQL, lease_s, max_reclaims)
        failed = sum(1 for row in rows if row["status"] == "failed")
        return len(rows) - failed, failed


async def check_model_columns(
    conn: asyncpg.Pool | asyncpg.Connection, models: Sequence[ModelColumns]
) -> list[str]:
    """Each model's vector column must exist in embeddings with its dimension, and its flag
    column must be boolean. Returns one readable problem per mismatch."""
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
        " WHERE attrelid = to_regclass('embeddings') AND attnum > 0 AND NOT attisdropped"
    )
    types = {row["attname"]: row["type"] for row in rows}
    problems = []
    for model in models:
        wanted = f"vector({model.dimension})"
        actual = types.get(model.column)
        if actual is None:
            problems.append(
                f"models.{model.name}: column embeddings.{model.column} does not exist"
                f" (ALTER TABLE embeddings ADD COLUMN {quote_ident(model.column)} {wanted})"
            )
        elif actual != wanted:
            problems.append(
                f"models.{model.name}: column embeddings.{model.column} is {actual},"
                f" the model gives {wanted}"
            )
        flag = types.get(model.flag_column)
        if flag is None:
            problems.append(
                f"models.{model.name}: column embeddings.{model.flag_column} does not exist"
                f" (ALTER TABLE embeddings ADD COLUMN {quote_ident(model.flag_column)}"
                " boolean DEFAULT false)"
            )
        elif flag != "boolean":
            problems.append(
                f"models.{model.name}: column embeddings.{model.flag_column} is {flag},"
                " not boolean"
            )
    return problems


def _encoded(vector: Embedding | None) -> bytes | None:
    return None if vector is None else encode_vector(vector)


def _short(reason: str | None, limit: int = 500) -> str | None:
    if reason is None or len(reason) <= limit:
        return reason
    return reason[: limit - 1] + "…"


def _done_expression(model: ModelColumns) -> str:
    return (
        f"coalesce(e.content_hash = c.content_hash AND e.{quote_ident(model.flag_column)} "
        f"AND e.{quote_ident(model.column)} IS NOT NULL, false)"
    )


def _claim_sql(models: Sequence[ModelColumns]) -> str:
    done = ", ".join(_done_expression(model) for model in models)
    return f"""
WITH due AS (
    SELECT id FROM embedding_queue
    WHERE status = 'queued'
      AND scheduled_at <= now()
      AND coalesce(retry_count, 0) < coalesce(max_retries, $4)
    ORDER BY priority, scheduled_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE embedding_queue q
    SET status = 'processing',
        processing_started_at = now(),
        lease_token = $2,
        lease_expires_at = now() + make_interval(secs => $3),
        updated_at = now()
    FROM due
    WHERE q.id = due.id
    RETURNING q.id, q.content_type, q.content_id, q.content_text, q.content_hash,
              coalesce(q.retry_count, 0) AS retry_count,
              coalesce(q.max_retries, $4) AS max_retries,
              q.priority, q.scheduled_at
)
SELECT c.id, c.content_type, c.content_id, c.content_text, c.content_hash,
       c.retry_count, c.max_retries, ARRAY[{done}]::boolean[] AS done
FROM claimed c
LEFT JOIN embeddings e ON e.content_type = c.content_type AND e.content_id = c.content_id
ORDER BY c.priority, c.scheduled_at, c.id
"""


def _finish_sql(models: Sequence[ModelColumns]) -> str:
    """Settle the batch's queue rows, then store the vectors of the rows it still owned.

    Parameters: $1..$6 one array element per item (id, ok, charge, final, error, delay),
    $7 the lease token, $8 the default max_retries, then one vector[] per model (NULL where
    the model made no vector). Text and hash come from the queue row, which the lease proves
    unchanged since the claim. A model without a new vector keeps its stored one only if the
    text is unchanged.
    """
    aliases = [f"v{index}" for index in range(len(models))]
    vector_arrays = ", ".join(f"${index}::vector[]" for index in range(9, 9 + len(models)))
    columns: list[str] = []
    values: list[str] = []
    updates: list[str] = []
    flags_after: list[str] = []
    same_text = "e.content_hash = EXCLUDED.content_hash"
    for model, alias in zip(models, aliases, strict=True):
        column, flag = quote_ident(model.column), quote_ident(model.flag_column)
        columns += [column, flag]
        values += [f"u.{alias}", f"u.{alias} IS NOT NULL"]
        updates.append(
            f"{column} = CASE WHEN EXCLUDED.{flag} THEN EXCLUDED.{column} "
            f"WHEN {same_text} THEN e.{column} END"
        )
        flag_after = (
            f"(EXCLUDED.{flag} OR ({same_text} AND coalesce(e.{flag}, false) "
            f"AND e.{column} IS NOT NULL))"
        )
        updates.append(f"{flag} = {flag_after}")
        flags_after.append(flag_after)
    all_new = " AND ".join(f"u.{alias} IS NOT NULL" for alias in aliases)
    any_new = " OR ".join(f"u.{alias} IS NOT NULL" for alias in aliases)
    return f"""
WITH finished AS (
{_SETTLE_QUEUE_SQL}
), stored AS (
    INSERT INTO embeddings AS e
        (content_type, content_id, content_hash, content_text, {", ".join(columns)},
         status, updated_at)
    SELECT f.content_type, f.content_id, f.content_hash, f.content_text, {", ".join(values)},
           CASE WHEN {all_new} THEN 'completed' ELSE 'pending' END, now()
    FROM unnest($1::bigint[], {vector_arrays}) AS u(id, {", ".join(aliases)})
    JOIN finished f ON f.id = u.id
    WHERE {any_new}
    ON CONFLICT (content_type, content_id) DO UPDATE SET
        {", ".join(updates)},
        status = CASE WHEN {" AND ".join(flags_after)} THEN 'completed' ELSE 'pending' END,
        content_hash = EXCLUDED.content_hash,
        content_text = EXCLUDED.content_text,
        updated_at = now()
)
SELECT id, status FROM finished
"""


_SETTLE_QUEUE_SQL = """
UPDATE embedding_queue q
SET status = CASE
        WHEN o.ok THEN 'completed'
        WHEN o.final OR (o.charge AND coalesce(q.retry_count, 0) + 1 >= coalesce(q.max_retries, $8))
            THEN 'failed'
        ELSE 'queued' END,
    retry_count = coalesce(q.retry_count, 0) + CASE WHEN o.charge AND NOT o.ok THEN 1 ELSE 0 END,
    error_message = o.error,
    scheduled_at = CASE WHEN o.ok THEN q.scheduled_at
                        ELSE now() + make_interval(secs => o.delay_s) END,
    lease_token = NULL,
    lease_expires_at = NULL,
    updated_at = now()
FROM unnest($1::bigint[], $2::boolean[], $3::boolean[], $4::boolean[], $5::text[],
            $6::float8[]) AS o(id, ok, charge, final, error, delay_s)
WHERE q.id = o.id AND q.lease_token = $7 AND q.status = 'processing'
RETURNING q.id, q.status, q.content_type, q.content_id, q.content_hash, q.content_text
"""

_RENEW_SQL = """
UPDATE embedding_queue
SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_token = $1 AND status = 'processing'
"""

_RELEASE_SQL = """
UPDATE embedding_queue
SET status = 'queued', lease_token = NULL, lease_expires_at = NULL,
    processing_started_at = NULL, updated_at = now()
WHERE lease_token = ANY($1::uuid[]) AND status = 'processing'
"""

# Rows from before embedworker (no lease) count as expired once processing_started_at is older
# than one lease.
_RECOVER_SQL = """
UPDATE embedding_queue q
SET status = CASE WHEN q.reclaim_count + 1 >= $2 THEN 'failed' ELSE 'queued' END,
    reclaim_count = q.reclaim_count + 1,
    error_message = CASE WHEN q.reclaim_count + 1 >= $2
        THEN format('lease expired %s times: the item may be crashing the worker',
                    q.reclaim_count + 1)
        ELSE q.error_message END,
    lease_token = NULL,
    lease_expires_at = NULL,
    processing_started_at = NULL,
    updated_at = now()
WHERE q.status = 'processing'
  AND (q.lease_expires_at < now()
       OR (q.lease_expires_at IS NULL
           AND coalesce(q.processing_started_at, q.updated_at) < now() - make_interval(secs => $1)))
RETURNING q.id, q.status
"""
