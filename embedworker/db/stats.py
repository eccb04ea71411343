"""Queue statistics for operators: counts, what is due, what is stuck, recent activity.

A few read-only queries. The counts come from one statement (one snapshot), so they add up:
``sum(by_status) == total`` and
``due + scheduled_later + stranded + waiting_for_model == by_status['queued']``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from embedworker.db.coverage import ModelCoverage, model_coverage
from embedworker.db.indexes import ColumnIndexes, column_indexes
from embedworker.db.vectors import ModelColumns

STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "failed")
TOP_ERRORS = 20
RECENT_ITEMS = 10
# The claim's fallback for a NULL max_retries column (Settings.max_retries defaults to 3).
DEFAULT_MAX_RETRIES = 3

# GROUPING(status, priority, content_type): a bit is set for each column aggregated away.
_ALL, _BY_STATUS, _BY_PRIORITY, _BY_CONTENT_TYPE = 0b111, 0b011, 0b101, 0b110

# "due" is exactly the claim's condition (db.queue); "stranded" is queued but never claimable;
# "waiting" is parked until a model that was unavailable answers again.
_COUNTS_SQL = """
WITH q AS (
    SELECT status, priority, content_type, scheduled_at,
           coalesce(retry_count, 0) < coalesce(max_retries, $1) AS retries_left,
           status = 'queued' AND waiting_for IS NOT NULL AS waiting
    FROM embedding_queue
), c AS (
    SELECT status, priority, content_type, scheduled_at, waiting,
           status = 'queued' AND NOT waiting AND retries_left AND scheduled_at <= now() AS due,
           status = 'queued' AND NOT waiting AND retries_left AND scheduled_at > now() AS later,
           status = 'queued' AND NOT waiting AND (NOT retries_left OR scheduled_at IS NULL)
               AS stranded
    FROM q
)
SELECT GROUPING(status, priority, content_type) AS grouping,
       status, priority, content_type,
       count(*) AS n,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE later) AS later,
       count(*) FILTER (WHERE stranded) AS stranded,
       count(*) FILTER (WHERE waiting) AS waiting,
       extract(epoch FROM now() - min(scheduled_at) FILTER (WHERE due))::float8 AS oldest_due_s,
       now() AS as_of
FROM c
GROUP BY GROUPING SETS ((), (status), (priority), (content_type))
"""

_ERRORS_SQL = """
SELECT error_message, count(*) AS n
FROM embedding_queue
WHERE status = 'failed'
GROUP BY error_message
ORDER BY n DESC, error_message NULLS LAST
LIMIT $1
"""

_WAITING_SQL = """
SELECT model, count(*) AS n
FROM embedding_queue, unnest(waiting_for) AS model
WHERE status = 'queued' AND waiting_for IS NOT NULL
GROUP BY model
ORDER BY model
"""

_RECENT_SQL = """
SELECT id, content_type, content_id, status, priority, coalesce(retry_count, 0) AS retry_count,
       error_message, created_at, updated_at
FROM embedding_queue
ORDER BY updated_at DESC NULLS LAST, id DESC
LIMIT $1
"""


@dataclass(frozen=True)
class RecentItem:
    """One queue row, as the "recent activity" list shows it."""

    id: int
    content_type: str
    content_id: int
    status: str
    priority: int | None
    retry_count: int
    error_message: str | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class QueueStatus:
    """A snapshot of ``embedding_queue``.

    ``due``: claimable now (queued, ``scheduled_at <= now()``, retries left).
    ``scheduled_later``: queued with retries left, ``scheduled_at`` in the future.
    ``stranded``: queued but never claimable (retries spent, or a NULL ``scheduled_at``).
    ``waiting_for_model``: queued, parked until a model that was unavailable answers again
    (``waiting_by_model`` counts them per model they wait for).
    ``oldest_due_age_s``: seconds since the longest-waiting due item's ``scheduled_at``.
    ``models``: each model's coverage of the embeddings table, when it was asked for;
    ``indexes``: the ANN indexes of each model's column, likewise.
    """

    as_of: datetime
    total: int
    by_status: Mapping[str, int]
    by_priority: Mapping[int | None, int]
    by_content_type: Mapping[str, int]
    due: int
    scheduled_later: int
    stranded: int
    oldest_due_age_s: float | None
    failed_by_error: tuple[tuple[str | None, int], ...]
    recent: tuple[RecentItem, ...]
    waiting_for_model: int = 0
    waiting_by_model: Mapping[str, int] = field(default_factory=dict)
    models: Mapping[str, ModelCoverage] = field(default_factory=dict)
    indexes: Mapping[str, ColumnIndexes] = field(default_factory=dict)


async def queue_status(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    default_max_retries: int = DEFAULT_MAX_RETRIES,
    models: Sequence[ModelColumns] = (),
) -> QueueStatus:
    """Read the queue's statistics; ``default_max_retries`` stands in for NULL max_retries.
    With ``models``, each one's coverage of the embeddings table is counted too."""
    rows = await conn.fetch(_COUNTS_SQL, default_max_retries)
    errors = await conn.fetch(_ERRORS_SQL, TOP_ERRORS)
    recent = await conn.fetch(_RECENT_SQL, RECENT_ITEMS)
    waiting = await conn.fetch(_WAITING_SQL)
    coverage = await model_coverage(conn, models)
    indexes = await column_indexes(conn, models) if models else {}

    totals = next(row for row in rows if row["grouping"] == _ALL)
    by_status = dict.fromkeys(STATUSES, 0)
    by_priority: dict[int | None, int] = {}
    by_content_type: dict[str, int] = {}
    for row in rows:
        if row["grouping"] == _BY_STATUS:
            by_status[row["status"]] = row["n"]
        elif row["grouping"] == _BY_PRIORITY:
            by_priority[row["priority"]] = row["n"]
        elif row["grouping"] == _BY_CONTENT_TYPE:
            by_content_type[row["content_type"]] = row["n"]

    return QueueStatus(
        as_of=totals["as_of"],
        total=totals["n"],
        by_status=by_status,
        by_priority=dict(sorted(by_priority.items(), key=_priority_order)),
        by_content_type=dict(sorted(by_content_type.items(), key=lambda kv: (-kv[1], kv[0]))),
        due=totals["due"],
        scheduled_later=totals["later"],
        stranded=totals["stranded"],
        waiting_for_model=totals["waiting"],
        waiting_by_model={row["model"]: row["n"] for row in waiting},
        models=coverage,
        indexes=indexes,
        oldest_due_age_s=(
            None if totals["oldest_due_s"] is None else max(0.0, totals["oldest_due_s"])
        ),
        failed_by_error=tuple((row["error_message"], row["n"]) for row in errors),
        recent=tuple(
            RecentItem(
                id=row["id"],
                content_type=row["content_type"],
                content_id=row["content_id"],
                status=row["status"],
                priority=row["priority"],
                retry_count=row["retry_count"],
                error_message=row["error_message"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in recent
        ),
    )


# /metrics and /status recount each model's coverage at most this often: it reads the whole
# embeddings table.
COVERAGE_MAX_AGE_S = 60.0


class StatusReader:
    """``queue_status`` for the observability endpoint: the queue on every call, each model's
    coverage at most every COVERAGE_MAX_AGE_S (or when the models change)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._coverage: tuple[list[ModelColumns], float, dict[str, ModelCoverage]] | None = None

    async def read(self, models: Sequence[ModelColumns], default_max_retries: int) -> QueueStatus:
        status = await queue_status(self._pool, default_max_retries=default_max_retries)
        models = list(models)
        cached = self._coverage
        if cached is None or cached[0] != models or \
                time.monotonic() - cached[1] > COVERAGE_MAX_AGE_S:
            cached = (models, time.monotonic(), await model_coverage(self._pool, models))
            self._coverage = cached
        return replace(status, models=cached[2])


def _priority_order(item: tuple[int | None, int]) -> tuple[bool, int]:
    priority = item[0]
    return (priority is None, priority or 0)


def to_json_dict(status: QueueStatus) -> dict[str, Any]:
    """A JSON-serialisable dict: Studify's queue-monitor keys plus embedworker's extras."""
    return {
        "asOf": status.as_of.isoformat(),
        "total": status.total,
        "byStatus": dict(status.by_status),
        "byPriority": {
            "null" if priority is None else str(priority): count
            for priority, count in status.by_priority.items()
        },
        "byContentType": dict(status.by_content_type),
        "recentItems": [_recent_json(item) for item in status.recent],
        "due": status.due,
        "scheduledLater": status.scheduled_later,
        "stranded": status.stranded,
        "waitingForModel": status.waiting_for_model,
        "waitingByModel": dict(status.waiting_by_model),
        "models": {
            name: {**coverage.as_json(), "index": _index_json(status.indexes.get(name))}
            for name, coverage in status.models.items()
        },
        "oldestDueAgeSeconds": status.oldest_due_age_s,
        "failedByError": [
            {"error": message, "count": count} for message, count in status.failed_by_error
        ],
    }


def _index_json(indexes: ColumnIndexes | None) -> dict[str, Any] | None:
    """The index that serves a model's column (``state`` "ready"), or the one being built
    ("building"), or left invalid ("invalid"); ``state`` "none" when there is none."""
    if indexes is None:
        return None
    index = indexes.serving or next(iter(indexes.invalid), None)
    return {
        "state": indexes.state,
        "name": index.name if index else None,
        "method": index.method if index else None,
    }


def _recent_json(item: RecentItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "contentType": item.content_type,
        "contentId": item.content_id,
        "status": item.status,
        "priority": item.priority,
        "retryCount": item.retry_count,
        "errorMessage": item.error_message,
        "createdAt": _iso(item.created_at),
        "updatedAt": _iso(item.updated_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
