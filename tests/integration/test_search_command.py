"""`embedworker search`: the question goes to each model's server as a query, the hits come
from embedworker_search(), and a search with every model ranks by the weighted sum."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from embedworker.db.connect import connect, encode_vector
from embedworker.standin import TASK_PREFIXES, StandinServer, deterministic_vector
from tests.helpers import unit_vectors
from tests.integration.test_coverage_commands import cli
from tests.integration.test_operate import config_file  # noqa: F401  (a fixture)

QUESTION = "how do plants  make food?"
CLEANED = "how do plants make food?"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(database_url, vectors=True)
    yield connection
    await connection.close()


def e5_query(text: str) -> np.ndarray:
    return np.array(deterministic_vector("e5_small", TASK_PREFIXES["query"] + text, 384))


def bge_query(text: str) -> np.ndarray:
    return np.array(deterministic_vector("bge_m3", text, 1024))


async def insert(conn: asyncpg.Connection, content_type: str, content_id: int,
                 e5: np.ndarray | None, bge: np.ndarray | None) -> None:
    await conn.execute(
        "INSERT INTO embeddings (content_type, content_id, content_text, content_hash,"
        " embedding_e5_small, has_e5_embedding, embedding_bge_m3, has_bge_embedding)"
        " VALUES ($1, $2, $1 || ' ' || $2::bigint, 'h', $3, $4, $5, $6)",
        content_type, content_id,
        None if e5 is None else encode_vector(e5.astype(np.float32)), e5 is not None,
        None if bge is None else encode_vector(bge.astype(np.float32)), bge is not None,
    )


async def seed(conn: asyncpg.Connection) -> None:
    """Row ("post", 1) matches the question exactly for e5 only, ("post", 2) for bge only,
    ("lesson", 3) half-way for both; the rest are unrelated."""
    e5, bge = e5_query(CLEANED), bge_query(CLEANED)
    e5_noise, bge_noise = unit_vectors(10, seed=1), unit_vectors(10, seed=2, dim=1024)
    await insert(conn, "post", 1, e5, bge_noise[0])
    await insert(conn, "post", 2, e5_noise[0], bge)
    halfway_e5 = e5 + e5_noise[1]
    halfway_bge = bge + bge_noise[1]
    await insert(conn, "lesson", 3, halfway_e5 / np.linalg.norm(halfway_e5),
                 halfway_bge / np.linalg.norm(halfway_bge))
    for n in range(4, 10):
        await insert(conn, "post", n, e5_noise[n], bge_noise[n])
    await insert(conn, "post", 10, e5, None)  # no bge vector yet


async def test_one_model_gets_the_question_as_a_query_and_gives_its_nearest(
    conn: asyncpg.Connection, config_file: Path, e5_server: StandinServer,  # noqa: F811
    bge_server: StandinServer,
) -> None:
    await seed(conn)

    result = await asyncio.to_thread(cli, config_file, "search", QUESTION, "--model", "e5_small",
                                     "-k", "3", "--json")

    assert result.returncode == 0, result.stderr
    assert e5_server.texts == [CLEANED]
    assert e5_server.tasks == ["query"]
    assert bge_server.texts == []
    hits = json.loads(result.stdout)
    assert [(hit["content_type"], hit["content_id"]) for hit in hits] == [
        ("post", 1), ("post", 10), ("lesson", 3)
    ]
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["text"] == "post 1"
    assert set(hits[0]) == {"content_type", "content_id", "similarity", "text", "similarities"}


async def test_every_model_ranks_by_the_weighted_sum(
    conn: asyncpg.Connection, config_file: Path, e5_server: StandinServer,  # noqa: F811
    bge_server: StandinServer,
) -> None:
    await seed(conn)

    result = await asyncio.to_thread(cli, config_file, "search", QUESTION, "-k", "4", "--json")

    assert result.returncode == 0, result.stderr
    assert bge_server.texts == [CLEANED]
    assert bge_server.tasks == [None]
    assert e5_server.tasks == ["query"]
    hits = json.loads(result.stdout)
    # Studify's weights: 0.4 e5, 0.6 bge: the bge match beats the e5 match
    keys = [(hit["content_type"], hit["content_id"]) for hit in hits]
    assert keys[:3] == [("lesson", 3), ("post", 2), ("post", 1)]
    for hit in hits:
        sims = hit["similarities"]
        expected = 0.4 * (sims["e5_small"] or 0) + 0.6 * (sims["bge_m3"] or 0)
        assert hit["similarity"] == pytest.approx(expected, abs=1e-9)
    post_1 = hits[2]
    assert post_1["similarities"]["e5_small"] == pytest.approx(1.0, abs=1e-5)

    reweighted = await asyncio.to_thread(
        cli, config_file, "search", QUESTION, "-k", "4", "--json",
        EMBEDWORKER_MODELS__E5_SMALL__SEARCH_WEIGHT="3",
        EMBEDWORKER_MODELS__BGE_M3__SEARCH_WEIGHT="1",
    )
    hits = json.loads(reweighted.stdout)
    keys = [(hit["content_type"], hit["content_id"]) for hit in hits]
    # now the e5 matches (0.75 plus or minus noise) beat the half-way row (0.71)
    assert sorted(keys[:2]) == [("post", 1), ("post", 10)]
    assert keys[2] == ("lesson", 3)
    assert hits[0]["similarity"] == pytest.approx(
        0.75 * hits[0]["similarities"]["e5_small"] + 0.25 * hits[0]["similarities"]["bge_m3"]
    )
    # the row without a bge vector gets nothing from bge
    no_bge = next(hit for hit in hits if hit["content_id"] == 10)
    assert no_bge["similarities"]["bge_m3"] is None
    assert no_bge["similarity"] == pytest.approx(0.75, abs=1e-5)


async def test_type_filter_k_and_the_text_table(
    conn: asyncpg.Connection, config_file: Path,  # noqa: F811
) -> None:
    await seed(conn)

    result = await asyncio.to_thread(cli, config_file, "search", QUESTION, "--type", "lesson",
                                     "-k", "5")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "weights: e5_small 0.40, bge_m3 0.60"
    assert lines[1].split() == ["similarity", "e5_small", "bge_m3", "type", "id", "text"]
    assert len(lines) == 3
    assert lines[2].split()[3:] == ["lesson", "3", "lesson", "3"]


async def test_a_model_that_fails_is_left_out_and_all_failing_is_an_error(
    conn: asyncpg.Connection, config_file: Path, bge_server: StandinServer,  # noqa: F811
    e5_server: StandinServer,
) -> None:
    await seed(conn)
    bge_server.faults.healthy = False  # answers 503

    result = await asyncio.to_thread(cli, config_file, "search", QUESTION, "-k", "2", "--json")

    assert result.returncode == 0, result.stderr
    assert "bge_m3 left out: HTTP 503" in result.stderr
    hits = json.loads(result.stdout)
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-5)  # e5 alone, weight 1

    e5_server.faults.healthy = False
    failed = await asyncio.to_thread(cli, config_file, "search", QUESTION)
    assert failed.returncode == 69
    assert "cannot embed the question" in failed.stderr

    unknown = await asyncio.to_thread(cli, config_file, "search", QUESTION, "--model", "minilm")
    assert unknown.returncode == 2
    assert "no enabled model named 'minilm'" in unknown.stderr


async def test_query_prefix_for_servers_that_add_none(
    conn: asyncpg.Connection, config_file: Path,  # noqa: F811
) -> None:
    with StandinServer("e5_small", 384, protocol="tei") as tei:
        result = await asyncio.to_thread(
            cli, config_file, "search", QUESTION, "--model", "e5_small",
            EMBEDWORKER_MODELS__E5_SMALL__URL=tei.url,
            EMBEDWORKER_MODELS__E5_SMALL__PROTOCOL="tei",
            EMBEDWORKER_MODELS__E5_SMALL__QUERY_PREFIX="query: ",
        )
        assert result.returncode == 0, result.stderr
        assert tei.texts == ["query: " + CLEANED]
        assert result.stdout == "no hits\n"
