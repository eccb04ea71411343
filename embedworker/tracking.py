"""Tracked tables: the Python side of sql/005_track.sql (track, untrack, list, backfill)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

OnDelete = Literal["mark", "delete"]

_TRACKED_SQL = """
SELECT r.content_type, r.source::text AS source, r.id_column, r.text_columns, r.priority,
       r.where_clause, r.on_delete, r.created_at,
       EXISTS (SELECT 1 FROM pg_trigger g
               WHERE g.tgrelid = r.source
                 AND g.tgname = embedworker_track_trigger_name(r.content_type, 'insert'))
           AS installed
FROM embedworker_tracked r
ORDER BY r.content_type
"""


@dataclass(frozen=True)
class TrackedTable:
    """One row of ``embedworker_tracked``."""

    content_type: str
    table: str
    text_columns: tuple[str, ...]
    id_column: str
    priority: int
    where: str | None
    on_delete: OnDelete
    created_at: datetime
    # False when the table was dropped (or its triggers were) after it was tracked.
    installed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "contentType": self.content_type, "table": self.table,
            "textColumns": list(self.text_columns), "idColumn": self.id_column,
            "priority": self.priority, "where": self.where, "onDelete": self.on_delete,
            "createdAt": self.created_at.isoformat(), "installed": self.installed,
        }

    def describe(self) -> str:
        where = f" where {self.where}" if self.where else ""
        missing = "" if self.installed else "  (not installed: table or triggers gone)"
        return (f"{self.content_type}: {self.table}({', '.join(self.text_columns)})"
                f" by {self.id_column}, priority {self.priority}{where},"
                f" on delete {self.on_delete}{missing}")


@dataclass(frozen=True)
class BackfillProgress:
    """Running totals of a backfill, reported after each chunk."""

    scanned: int
    queued: int
    last_id: str | None


async def track(
    conn: asyncpg.Connection,
    table: str,
    content_type: str,
    text_columns: Sequence[str],
    *,
    id_column: str = "id",
    priority: int = 5,
    where: str | None = None,
    on_delete: OnDelete = "mark",
) -> None:
    """Install the triggers that queue ``table``'s rows as ``content_type``.

    ``table`` is read as PostgreSQL reads a ``regclass`` ("public.courses", '"Odd Name"');
    ``where`` is a trusted boolean expression over the table's columns. Tracking the same
    content_type and table again replaces its configuration.
    """
    await conn.execute(
        "SELECT embedworker_track($1::text::regclass, $2::text, $3::text[], $4::text,"
        " $5::integer, $6::text, $7::text)",
        table,
        content_type,
        list(text_columns),
        id_column,
        priority,
        where,
        on_delete,
    )


async def untrack(conn: asyncpg.Connection, content_type: str) -> bool:
    """Remove the triggers of ``content_type``; False when it was not tracked.

    Queue items and embeddings already made are kept.
    """
    removed: bool = await conn.fetchval("SELECT embedworker_untrack($1::text)", content_type)
    return removed


async def tracked(conn: asyncpg.Connection) -> list[TrackedTable]:
    """Every tracked content type, by name."""
    rows = await conn.fetch(_TRACKED_SQL)
    return [
        TrackedTable(
            content_type=row["content_type"],
            table=row["source"],
            text_columns=tuple(row["text_columns"]),
            id_column=row["id_column"],
            priority=row["priority"],
            where=row["where_clause"],
            on_delete=row["on_delete"],
            created_at=row["created_at"],
            installed=row["installed"],
        )
        for row in rows
    ]


async def backfill(
    conn: asyncpg.Connection,
    content_type: str,
    *,
    chunk_size: int = 1000,
    on_progress: Callable[[BackfillProgress], None] | None = None,
) -> int:
    """Queue the existing live rows of a tracked table; returns how many were queued.

    The table is read in id order, ``chunk_size`` rows at a time (keyset pagination), each
    chunk in its own short transaction unless ``conn`` is already inside one. Rows whose
    embedding is current are not queued again, so running it twice is cheap.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    after: str | None = None
    scanned = queued = 0
    while True:
        row = await conn.fetchrow(
            "SELECT last_id, scanned, queued FROM embedworker_backfill_chunk($1, $2, $3)",
            content_type,
            after,
            chunk_size,
        )
        assert row is not None
        if row["scanned"] == 0:
            return queued
        after = row["last_id"]
        scanned += row["scanned"]
        queued += row["queued"]
        if on_progress is not None:
            on_progress(BackfillProgress(scanned=scanned, queued=queued, last_id=after))
