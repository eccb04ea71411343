"""The SQL of searching: one model's nearest rows through ``embedworker_search()``, and every
model's similarity to a set of rows (for the weighted sum of a hybrid search)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from embedworker.db.connect import encode_vector
from embedworker.db.vectors import ModelColumns, current, quote_ident
from embedworker.embedders.base import Embedding

RowKey = tuple[str, int]  # (content_type, content_id)


@dataclass(frozen=True)
class Hit:
    """One row found by one model."""

    content_type: str
    content_id: int
    similarity: float
    text: str

    @property
    def key(self) -> RowKey:
        return (self.content_type, self.content_id)


_SEARCH_SQL = "SELECT * FROM embedworker_search($1::text, $2::vector, $3::int, $4::text[])"


async def search_model(
    conn: asyncpg.Connection | asyncpg.Pool,
    model: str,
    query: Embedding,
    k: int,
    content_types: Sequence[str] | None = None,
) -> list[Hit]:
    """The ``k`` nearest live rows with a current vector of ``model``, best first."""
    rows = await conn.fetch(
        _SEARCH_SQL, model, encode_vector(query), k,
        list(content_types) if content_types else None,
    )
    return [
        Hit(row["content_type"], row["content_id"], row["similarity"], row["content_text"])
        for row in rows
    ]


def _similarities_sql(models: Sequence[ModelColumns]) -> str:
    columns = ", ".join(
        f"CASE WHEN {current(model)} THEN 1 - (e.{quote_ident(model.column)} <=> ${index + 3})"
        " END"
        for index, model in enumerate(models)
    )
    return f"""
SELECT e.content_type, e.content_id, e.content_text, ARRAY[{columns}]::float8[] AS similarities
FROM embeddings e
JOIN unnest($1::text[], $2::bigint[]) AS k(content_type, content_id)
  ON e.content_type = k.content_type AND e.content_id = k.content_id
WHERE NOT coalesce(e.is_deleted, false)
"""


@dataclass(frozen=True)
class RowSimilarities:
    """One row's text and its cosine similarity to each model's query vector (None where the
    row has no current vector of that model)."""

    text: str
    similarities: Mapping[str, float | None]


async def similarities(
    conn: asyncpg.Connection | asyncpg.Pool,
    queries: Sequence[tuple[ModelColumns, Embedding]],
    keys: Sequence[RowKey],
) -> dict[RowKey, RowSimilarities]:
    """Each of ``keys``' rows, with its similarity to every model's query vector."""
    if not keys or not queries:
        return {}
    models = [model for model, _ in queries]
    rows = await conn.fetch(
        _similarities_sql(models),
        [content_type for content_type, _ in keys],
        [content_id for _, content_id in keys],
        *(encode_vector(vector) for _, vector in queries),
    )
    return {
        (row["content_type"], row["content_id"]): RowSimilarities(
            row["content_text"],
            {model.name: value for model, value in zip(models, row["similarities"], strict=True)},
        )
        for row in rows
    }
