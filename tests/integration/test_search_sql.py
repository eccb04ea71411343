"""embedworker_search() and the models registry, on a real PostgreSQL with pgvector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import numpy as np
import pytest

from embedworker.config import Settings
from embedworker.db.connect import connect
from embedworker.db.registry import register_models
from embedworker.db.search import search_model
from embedworker.db.vectors import current
from embedworker.service import model_columns
from tests.helpers import insert_embeddings, unit_vectors


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(database_url, vectors=True)
    yield connection
    await connection.close()


def settings_for(database_url: str, **models: dict[str, Any]) -> Settings:
    return Settings(database_url=database_url, models=models)


async def search(
    conn: asyncpg.Connection, query: np.ndarray, k: int = 10, types: Sequence[str] | None = None,
    model: str = "e5_small",
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM embedworker_search($1, $2, $3, $4)", model, query, k,
        list(types) if types else None,
    )


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    """Row positions of the ``k`` nearest by cosine similarity."""
    return list(np.argsort(-(vectors @ query), kind="stable")[:k])


async def test_results_are_the_nearest_rows_best_first(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url))
    vectors = unit_vectors(200, seed=1)
    await insert_embeddings(conn, vectors)
    query = unit_vectors(1, seed=2)[0]

    rows = await search(conn, query, k=7)

    assert [row["content_id"] for row in rows] == [n + 1 for n in exact_top(vectors, query, 7)]
    similarities = [row["similarity"] for row in rows]
    assert similarities == sorted(similarities, reverse=True)
    expected = [float(vectors[row["content_id"] - 1] @ query) for row in rows]
    assert similarities == pytest.approx(expected, abs=1e-5)
    assert rows[0]["content_text"] == f"text {rows[0]['content_id']}"
    assert rows[0]["content_type"] == "post"


async def test_only_live_rows_with_a_current_vector_are_found(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url, e5_small={"version": "2"}))
    query = unit_vectors(1, seed=3)[0]
    close = np.stack([query] * 6)  # every row would be a perfect match
    await insert_embeddings(conn, close[:1], first_id=1, versions='{"e5_small": "2"}')
    await insert_embeddings(conn, close[:1], first_id=2, versions='{"e5_small": "2"}', deleted=True)
    await insert_embeddings(conn, close[:1], first_id=3, versions='{"e5_small": "2"}', flag=False)
    await insert_embeddings(conn, close[:1], first_id=4, versions='{"e5_small": "1"}')
    await insert_embeddings(conn, close[:1], first_id=5, versions="{}")  # counts as version "1"
    await insert_embeddings(conn, close[:1], first_id=6, versions='{"e5_small": "2"}', flag=None)
    await conn.execute(
        "INSERT INTO embeddings (content_type, content_id, content_text, content_hash,"
        " has_e5_embedding, embedding_versions) VALUES ('post', 7, 'no vector', 'h', true,"
        " '{\"e5_small\": \"2\"}')"
    )

    assert [row["content_id"] for row in await search(conn, query)] == [1]

    await register_models(conn, settings_for(database_url))  # back to version "1"
    assert sorted(row["content_id"] for row in await search(conn, query)) == [4, 5]


async def test_the_function_and_the_worker_agree_on_what_is_current(
    conn: asyncpg.Connection, database_url: str
) -> None:
    settings = settings_for(database_url, e5_small={"version": "7"})
    await register_models(conn, settings)
    vectors = unit_vectors(48, seed=4)
    cases = [(flag, versions, deleted)
             for flag in (True, False, None)
             for versions in ("{}", '{"e5_small": "7"}', '{"e5_small": "1"}', '{"bge_m3": "7"}')
             for deleted in (False, True)]
    for n, (flag, versions, deleted) in enumerate(cases):
        await insert_embeddings(conn, vectors[2 * n : 2 * n + 2], first_id=2 * n + 1, flag=flag,
                          versions=versions, deleted=deleted)
    model = next(model for model in model_columns(settings) if model.name == "e5_small")
    wanted = await conn.fetch(
        f"SELECT content_id FROM embeddings e WHERE {current(model)}"
        " AND NOT coalesce(e.is_deleted, false)"
    )

    found = await search(conn, vectors[0], k=100)

    assert sorted(row["content_id"] for row in found) == sorted(row[0] for row in wanted)
    assert len(found) == 2  # flag true, version "7", not deleted: one case of two rows


async def test_a_selective_type_filter_still_gives_k_rows_through_the_index(
    conn: asyncpg.Connection, database_url: str
) -> None:
    settings = Settings(database_url=database_url, models={}, search_ef_search=40)
    await register_models(conn, settings)
    # Few enough rare rows that the ef_search nearest hold two or three of them, not so few
    # that the planner prefers the content type's own index (and an exact answer).
    vectors = unit_vectors(20000, seed=5)
    types = ["rare" if n % 16 == 0 else "common" for n in range(len(vectors))]
    await insert_embeddings(conn, vectors, content_types=types)
    await conn.execute(
        "CREATE INDEX e5_hnsw ON embeddings USING hnsw (embedding_e5_small vector_cosine_ops)"
    )
    await conn.execute("ANALYZE embeddings")
    query = unit_vectors(1, seed=6)[0]

    async with conn.transaction():
        rows = await search(conn, query, k=10, types=["rare"])
        scans = await conn.fetchval("SELECT pg_stat_get_xact_numscans('e5_hnsw'::regclass)")

    assert scans > 0, "the HNSW index was not used"
    assert len(rows) == 10
    assert all(row["content_type"] == "rare" for row in rows)
    similarities = [row["similarity"] for row in rows]
    assert similarities == sorted(similarities, reverse=True)
    # An approximate answer (random vectors are hard for any index), but of true similarities.
    expected = [float(vectors[row["content_id"] - 1] @ query) for row in rows]
    assert similarities == pytest.approx(expected, abs=1e-5)


async def test_fewer_matching_rows_than_k_gives_them_all(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url))
    vectors = unit_vectors(300, seed=7)
    await insert_embeddings(conn, vectors, content_types=["a"] * 297 + ["b"] * 3)
    await conn.execute(
        "CREATE INDEX ON embeddings USING hnsw (embedding_e5_small vector_cosine_ops)"
    )

    rows = await search(conn, unit_vectors(1, seed=8)[0], k=10, types=["b"])

    assert sorted(row["content_id"] for row in rows) == [298, 299, 300]


async def test_the_search_settings_are_restored(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url))
    await insert_embeddings(conn, unit_vectors(20, seed=9))
    async with conn.transaction():
        await conn.execute("SET LOCAL hnsw.ef_search = 77")
        await search(conn, unit_vectors(1, seed=10)[0])
        assert await conn.fetchval("SHOW hnsw.ef_search") == "77"
        assert await conn.fetchval("SHOW hnsw.iterative_scan") == "off"


async def test_unknown_disabled_and_mismatched_models_are_clear_errors(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url, bge_m3={"enabled": False}))
    query = unit_vectors(1, seed=11)[0]

    with pytest.raises(asyncpg.UndefinedObjectError) as unknown:
        await search(conn, query, model="minilm")
    assert "no configured model named 'minilm'" in str(unknown.value)
    assert unknown.value.detail == "configured models: e5_small"

    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="bge_m3 is disabled"):
        await search(conn, unit_vectors(1, seed=12, dim=1024)[0], model="bge_m3")
    with pytest.raises(asyncpg.DataError, match="has 1024 dimensions, model e5_small has 384"):
        await search(conn, unit_vectors(1, seed=13, dim=1024)[0])
    with pytest.raises(asyncpg.InvalidParameterValueError, match="p_k must be at least 1"):
        await search(conn, query, k=0)


async def test_search_model_reads_the_function(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await register_models(conn, settings_for(database_url))
    vectors = unit_vectors(30, seed=14)
    await insert_embeddings(conn, vectors, content_types=["course"] * 15 + ["post"] * 15)

    hits = await search_model(conn, "e5_small", vectors[20], 3, ["post"])

    assert hits[0].key == ("post", 21)
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[0].text == "text 21"
    assert len(hits) == 3


async def test_registering_follows_the_configuration(
    conn: asyncpg.Connection, database_url: str
) -> None:
    extra = {"url": "http://127.0.0.1:9", "dimension": 8, "column": "embedding_x",
             "flag_column": "has_x", "search_weight": 2}
    await register_models(conn, settings_for(database_url, x=extra))
    rows = await conn.fetch("SELECT * FROM embedworker_models ORDER BY name")
    assert [(row["name"], row["column_name"], row["search_weight"]) for row in rows] == [
        ("bge_m3", "embedding_bge_m3", 0.6), ("e5_small", "embedding_e5_small", 0.4),
        ("x", "embedding_x", 2.0),
    ]
    before = {row["name"]: row["updated_at"] for row in rows}

    await register_models(conn, settings_for(database_url, e5_small={"version": "3"}))

    rows = await conn.fetch("SELECT * FROM embedworker_models ORDER BY name")
    assert [(row["name"], row["version"]) for row in rows] == [("bge_m3", "1"), ("e5_small", "3")]
    assert rows[0]["updated_at"] == before["bge_m3"], "an unchanged model was rewritten"
