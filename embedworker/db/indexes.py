"""The ANN indexes of the model columns: what is there, and building an HNSW one.

An index *serves* a model when it is a valid, non-partial ``hnsw`` or ``ivfflat`` index on the
model's column alone with ``vector_cosine_ops`` (what ``<=>`` and so ``embedworker_search()``
use). embedworker names its own ``<column>_hnsw_idx``.

A build runs ``CREATE INDEX CONCURRENTLY`` (writes never wait for it) on a connection of its
own, holding a session advisory lock so that one build at a time runs across every copy of the
daemon and the `index` command. A build that fails, or whose connection dies, leaves an INVALID
index behind; whoever next holds the lock drops it (``DROP INDEX CONCURRENTLY``) before
building again. An invalid index that a build in progress is filling is never touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from embedworker.db.vectors import ModelColumns, quote_ident

# One index build at a time across every copy and command (pg_try_advisory_lock).
INDEX_LOCK_KEY = 0x656D6269  # "embi"
MAX_IDENTIFIER = 63
# What pgvector's in-memory graph needs per vector beyond the vector itself (an element, its
# neighbour lists of 2m at the ground layer, headers), rounded up: the build is fast only while
# the whole graph fits in maintenance_work_mem.
GRAPH_BYTES_PER_NEIGHBOUR = 16
GRAPH_BYTES_PER_ELEMENT = 256

_INDEXES_SQL = """
SELECT a.attname::text AS column_name,
       i.indexrelid::regclass::text AS name,
       am.amname::text AS method,
       i.indisvalid AS valid,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.index_relid = i.indexrelid) AS building
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
JOIN pg_opclass oc ON oc.oid = i.indclass[0]
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass('embeddings')
  AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
  AND am.amname IN ('hnsw', 'ivfflat') AND oc.opcname = 'vector_cosine_ops'
  AND a.attname = ANY ($1::text[])
ORDER BY i.indisvalid DESC, am.amname = 'hnsw' DESC, 2
"""


@dataclass(frozen=True)
class AnnIndex:
    """One cosine ANN index on a model's column."""

    name: str
    method: str
    valid: bool
    building: bool

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "method": self.method, "valid": self.valid,
                "building": self.building}


@dataclass(frozen=True)
class ColumnIndexes:
    """What serves a model's column (``serving``, if any) and its invalid indexes."""

    serving: AnnIndex | None = None
    invalid: tuple[AnnIndex, ...] = field(default_factory=tuple)

    @property
    def building(self) -> bool:
        return any(index.building for index in self.invalid)

    @property
    def state(self) -> str:
        """"ready" (an index serves the column), "building", "invalid" or "none"."""
        if self.serving is not None:
            return "ready"
        if self.building:
            return "building"
        return "invalid" if self.invalid else "none"

    def describe(self) -> str:
        """``hnsw name``, ``building name``, ``invalid name`` or ``none``: for `status`."""
        if self.serving is not None:
            return f"{self.serving.method} {self.serving.name}"
        if self.building:
            return "building " + next(i.name for i in self.invalid if i.building)
        if self.invalid:
            return "invalid " + self.invalid[0].name
        return "none"


def index_name(column: str) -> str:
    """The name of embedworker's HNSW index on ``column`` (at most 63 characters)."""
    name = f"{column}_hnsw_idx"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(column.encode()).hexdigest()[:8]
    return f"{column[: MAX_IDENTIFIER - 18]}_{digest}_hnsw_idx"


async def column_indexes(
    conn: asyncpg.Connection | asyncpg.Pool, models: Sequence[ModelColumns]
) -> dict[str, ColumnIndexes]:
    """Each model's indexes, keyed by model name."""
    rows = await conn.fetch(_INDEXES_SQL, [model.column for model in models])
    result = {}
    for model in models:
        found = [AnnIndex(row["name"], row["method"], row["valid"], row["building"])
                 for row in rows if row["column_name"] == model.column]
        serving = next((index for index in found if index.valid), None)
        result[model.name] = ColumnIndexes(
            serving, tuple(index for index in found if not index.valid)
        )
    return result


async def count_vectors(conn: asyncpg.Connection, model: ModelColumns, at_most: int) -> int:
    """How many rows hold a vector in the model's column, counting no further than
    ``at_most`` (so that the question costs little on a big table)."""
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM embeddings"
        f" WHERE {quote_ident(model.column)} IS NOT NULL LIMIT $1) AS v",
        at_most,
    )
    return count


async def try_lock(conn: asyncpg.Connection) -> bool:
    """Take the index-build lock for this session, if nobody holds it."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", INDEX_LOCK_KEY)
    return taken


async def lock(conn: asyncpg.Connection) -> None:
    """Wait for the index-build lock."""
    await conn.execute("SELECT pg_advisory_lock($1)", INDEX_LOCK_KEY)


async def unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", INDEX_LOCK_KEY)


async def drop_index(conn: asyncpg.Connection, name: str) -> None:
    """``DROP INDEX CONCURRENTLY`` (``name`` as the catalog gives it, quoted already)."""
    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


async def drop_leftovers(conn: asyncpg.Connection, model: ModelColumns) -> list[str]:
    """Drop the invalid indexes of embedworker's name on the model's column that no build is
    filling (call with the lock held: then no build of ours is). Returns their names."""
    state = (await column_indexes(conn, [model]))[model.name]
    ours = await conn.fetchval(
        "SELECT to_regclass($1)::text", quote_ident(index_name(model.column))
    )
    dropped = []
    for index in state.invalid:
        if index.name == ours and not index.building:
            await drop_index(conn, index.name)
            dropped.append(index.name)
    return dropped


def graph_memory_mb(vectors: int, dimension: int, m: int) -> int:
    """An estimate of the memory pgvector's HNSW build needs to hold the whole graph."""
    per_vector = 4 * dimension + GRAPH_BYTES_PER_NEIGHBOUR * 2 * m + GRAPH_BYTES_PER_ELEMENT
    return max(1, -(-vectors * per_vector // (1024 * 1024)))


async def maintenance_work_mem_mb(conn: asyncpg.Connection) -> int:
    kilobytes: int = await conn.fetchval(
        "SELECT setting::bigint * CASE unit WHEN 'kB' THEN 1 WHEN '8kB' THEN 8"
        " WHEN 'MB' THEN 1024 ELSE 1 END FROM pg_settings WHERE name = 'maintenance_work_mem'"
    )
    return kilobytes // 1024


async def set_build_session(conn: asyncpg.Connection, memory_mb: int) -> None:
    """This session's settings for a build: its memory, and no statement timeout (a build of
    millions of rows takes minutes; a timeout would only leave an invalid index)."""
    await conn.execute(f"SET maintenance_work_mem = '{int(memory_mb)}MB'")
    await conn.execute("SET statement_timeout = 0")


async def create_hnsw(
    conn: asyncpg.Connection, model: ModelColumns, *, m: int, ef_construction: int
) -> str:
    """``CREATE INDEX CONCURRENTLY`` the model's HNSW index (never inside a transaction).
    Returns its name."""
    name = index_name(model.column)
    await conn.execute(
        f"CREATE INDEX CONCURRENTLY {quote_ident(name)} ON embeddings"
        f" USING hnsw ({quote_ident(model.column)} vector_cosine_ops)"
        f" WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
    )
    return name
