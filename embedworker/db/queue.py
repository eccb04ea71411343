"""All SQL of the queue: claim, renew, finish, release and lease recovery.

Every write that ends a batch checks the batch's lease token, so a batch that lost its rows
(its lease expired, or the item's text changed and the trigger revoked the lease) writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from embedworker.db.connect import encode_vector
from embedworker.db.vectors import ModelColumns, current, quote_ident, quote_literal, stored
from embedworker.domain import Batch, Outcome, QueueItem

if TYPE_CHECKING:
    from embedworker.embedders.base import Embedding

__all__ = ["FinishCounts", "ModelColumns", "QueueStore", "check_model_columns"]

_DEADLOCK_ATTEMPTS = 3
_NONE_DONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FinishCounts:
    completed: int
    retrying: int
    failed: int
    lost: int
    # queued, waiting for a model that is unavailable (every other model's vector is stored)
    waiting: int = 0


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
                    # Checked by the server alone: asyncpg's own prepare would also look up
                    # the types of the finish's arrays, which can wait for the first finish.
                    await conn.execute(f"PREPARE embedworker_check AS {sql};"
                                       " DEALLOCATE embedworker_check")
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
                models_done=frozenset(row["done"]) if row["done"] else _NONE_DONE,
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
            [",".join(sorted(o.waiting_for)) if o.parked else None for o in outcomes],
            *([_encoded(o.vectors.get(model.name)) for o in outcomes] for model in self._models),
        )
        statuses = [row["status"] for row in rows]
        waiting = sum(1 for row in rows if row["waiting"])
        return FinishCounts(
            completed=statuses.count("completed"),
            retrying=statuses.count("queued") - waiting,
            failed=statuses.count("failed"),
            lost=len(outcomes) - len(rows),
            waiting=waiting,
        )

    async def release(self, tokens: Sequence[UUID]) -> int:
        """Give claimed rows back to the queue without spending a retry."""
        if not tokens:
            return 0
        result: str = await self._pool.execute(_RELEASE_SQL, list(tokens))
        return int(result.split()[-1])

    async def waited_for(self) -> list[str]:
        """The models that parked rows wait for."""
        rows = await self._pool.fetch(_WAITED_FOR_SQL)
        return [row["model"] for row in rows]

    async def release_waiting(self, down: Sequence[str]) -> int:
        """Make parked rows claimable again, except those waiting only for models in ``down``
        (the models whose breaker is open here); returns how many were released."""
        result: str = await self._pool.execute(_RELEASE_WAITING_SQL, list(down))
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
    """The model's name if the item's vector of it is current (its text and the model's
    version), NULL otherwise."""
    return (f"CASE WHEN e.content_hash = c.content_hash AND {current(model)}"
            f" THEN {quote_literal(model.name)} END")


def _claim_sql(models: Sequence[ModelColumns]) -> str:
    done = ", ".join(_done_expression(model) for model in models)
    return f"""
WITH due AS (
    SELECT id FROM embedding_queue
    WHERE status = 'queued'
      AND scheduled_at <= now()
      AND waiting_for IS NULL
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
       c.retry_count, c.max_retries, array_remove(ARRAY[{done}]::text[], NULL) AS done
FROM claimed c
LEFT JOIN embeddings e ON e.content_type = c.content_type AND e.content_id = c.content_id
ORDER BY c.priority, c.scheduled_at, c.id
"""


def _finish_sql(models: Sequence[ModelColumns]) -> str:
    """Settle the batch's queue rows, then store the vectors of the rows it still owned.

    Parameters: $1..$6 one array element per item (id, ok, charge, final, error, delay),
    $7 the lease token, $8 the default max_retries, $9 per item the models it waits for
    (comma-separated, NULL unless it is parked), then one vector[] per model (NULL where the
    model made no vector). Text and hash come from the queue row, which the lease proves
    unchanged since the claim. A model without a new vector keeps its stored one, with the
    version that made it, only if the text is unchanged. The row is 'completed' when every
    model's vector is current (new, or kept and of the model's version).
    """
    aliases = [f"v{index}" for index in range(len(models))]
    first_vector = 10
    vector_arrays = ", ".join(
        f"${index}::vector[]" for index in range(first_vector, first_vector + len(models))
    )
    names = ", ".join(quote_literal(model.name) for model in models)
    same_text = "e.content_hash = EXCLUDED.content_hash"
    columns: list[str] = []
    values: list[str] = []
    updates: list[str] = []
    new_versions: list[str] = []
    versions_after: list[str] = []
    current_after: list[str] = []
    for model, alias in zip(models, aliases, strict=True):
        column, flag = quote_ident(model.column), quote_ident(model.flag_column)
        name = quote_literal(model.name)
        columns += [column, flag]
        values += [f"u.{alias}", f"u.{alias} IS NOT NULL"]
        new_versions.append(
            f"{name}, CASE WHEN u.{alias} IS NOT NULL THEN {quote_literal(model.version)} END"
        )
        kept = f"({same_text} AND {stored(model)})"
        updates.append(
            f"{column} = CASE WHEN EXCLUDED.{flag} THEN EXCLUDED.{column} "
            f"WHEN {same_text} THEN e.{column} END"
        )
        updates.append(f"{flag} = (EXCLUDED.{flag} OR {kept})")
        versions_after.append(
            f"{name}, CASE WHEN EXCLUDED.{flag} THEN EXCLUDED.embedding_versions -> {name} "
            f"WHEN {kept} THEN e.embedding_versions -> {name} END"
        )
        current_after.append(f"(EXCLUDED.{flag} OR ({kept} AND {current(model)}))")
    all_new = " AND ".join(f"u.{alias} IS NOT NULL" for alias in aliases)
    any_new = " OR ".join(f"u.{alias} IS NOT NULL" for alias in aliases)
    return f"""
WITH finished AS (
{_SETTLE_QUEUE_SQL}
), stored AS (
    INSERT INTO embeddings AS e
        (content_type, content_id, content_hash, content_text, {", ".join(columns)},
         embedding_versions, status, updated_at)
    SELECT f.content_type, f.content_id, f.content_hash, f.content_text, {", ".join(values)},
           jsonb_strip_nulls(jsonb_build_object({", ".join(new_versions)})),
           CASE WHEN {all_new} THEN 'completed' ELSE 'pending' END, now()
    FROM unnest($1::bigint[], {vector_arrays}) AS u(id, {", ".join(aliases)})
    JOIN finished f ON f.id = u.id
    WHERE {any_new}
    ON CONFLICT (content_type, content_id) DO UPDATE SET
        {", ".join(updates)},
        embedding_versions = (coalesce(e.embedding_versions, '{{}}'::jsonb) - ARRAY[{names}])
            || jsonb_strip_nulls(jsonb_build_object({", ".join(versions_after)})),
        status = CASE WHEN {" AND ".join(current_after)} THEN 'completed' ELSE 'pending' END,
        content_hash = EXCLUDED.content_hash,
        content_text = EXCLUDED.content_text,
        updated_at = now()
)
SELECT id, status, waiting FROM finished
"""


# A parked item (queued, waiting for models that are unavailable) keeps its scheduled_at: it is
# claimed in its turn once released.
_SETTLE_QUEUE_SQL = """
UPDATE embedding_queue q
SET status = CASE
        WHEN o.ok THEN 'completed'
        WHEN o.final OR (o.charge AND coalesce(q.retry_count, 0) + 1 >= coalesce(q.max_retries, $8))
            THEN 'failed'
        ELSE 'queued' END,
    retry_count = coalesce(q.retry_count, 0) + CASE WHEN o.charge AND NOT o.ok THEN 1 ELSE 0 END,
    error_message = o.error,
    scheduled_at = CASE WHEN o.ok OR o.waiting IS NOT NULL THEN q.scheduled_at
                        ELSE now() + make_interval(secs => o.delay_s) END,
    waiting_for = string_to_array(o.waiting, ','),
    lease_token = NULL,
    lease_expires_at = NULL,
    updated_at = now()
FROM unnest($1::bigint[], $2::boolean[], $3::boolean[], $4::boolean[], $5::text[],
            $6::float8[], $9::text[]) AS o(id, ok, charge, final, error, delay_s, waiting)
WHERE q.id = o.id AND q.lease_token = $7 AND q.status = 'processing'
RETURNING q.id, q.status, q.waiting_for IS NOT NULL AS waiting,
          q.content_type, q.content_id, q.content_hash, q.content_text
"""

_WAITED_FOR_SQL = """
SELECT DISTINCT model
FROM embedding_queue, unnest(waiting_for) AS model
WHERE status = 'queued' AND waiting_for IS NOT NULL
"""

_RELEASE_WAITING_SQL = """
UPDATE embedding_queue
SET waiting_for = NULL, updated_at = now()
WHERE status = 'queued' AND waiting_for IS NOT NULL AND NOT (waiting_for <@ $1::text[])
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
