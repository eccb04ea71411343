"""Vector indexes the daemon makes and keeps, `embedworker index`, and what check/status say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.db.connect import connect
from embedworker.db.indexes import index_name
from embedworker.indexing import IndexOptions, ensure_index
from embedworker.service import model_columns
from embedworker.standin import StandinServer
from tests.helpers import insert_embeddings, unit_vectors, wait_until
from tests.integration.test_coverage_commands import cli
from tests.integration.test_operate import (
    config_file,  # noqa: F401  (a fixture)
    start_service,
    stop_service,
    write_config,
)
from tests.integration.test_worker import RunningService

E5_INDEX = index_name("embedding_e5_small")


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(database_url, vectors=True)
    yield connection
    await connection.close()


async def ann_indexes(conn: asyncpg.Connection, column: str) -> list[asyncpg.Record]:
    """Every index on ``column`` of embeddings: name, method, valid."""
    return await conn.fetch(
        "SELECT c.relname AS name, am.amname AS method, i.indisvalid AS valid"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = c.relam"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = 'embeddings'::regclass AND a.attname = $1 ORDER BY 1",
        column,
    )


async def test_the_daemon_indexes_a_column_once_it_holds_index_min_rows(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100, index_check_interval_s=0.2)
    await insert_embeddings(conn, unit_vectors(60, seed=1))
    e5 = next(model for model in model_columns(settings) if model.name == "e5_small")
    early = await ensure_index(settings.database_url, e5, IndexOptions.from_settings(settings),
                               min_rows=settings.index_min_rows)
    assert early.status == "too_few"

    async with RunningService(settings):
        await insert_embeddings(conn, unit_vectors(60, seed=2), first_id=61)

        async def indexed() -> bool:
            rows = await ann_indexes(conn, "embedding_e5_small")
            return [tuple(row) for row in rows] == [(E5_INDEX, "hnsw", True)]

        await wait_until(indexed, timeout=30)
        # bge_m3's column holds no vector: no index for it
        assert await ann_indexes(conn, "embedding_bge_m3") == []


async def test_a_model_added_by_a_reload_gets_its_index(
    conn: asyncpg.Connection, tmp_path: Path, database_url: str,
    e5_server: StandinServer, bge_server: StandinServer,
) -> None:
    await conn.execute("ALTER TABLE embeddings ADD COLUMN embedding_mini vector(8),"
                       " ADD COLUMN has_mini boolean DEFAULT false")
    await insert_embeddings(conn, unit_vectors(30, seed=3, dim=8), column="embedding_mini",
                            flag_column="has_mini")
    path = tmp_path / "embedworker.toml"
    write_config(path, database_url, e5_server.url, bge_server.url, index_min_rows=20,
                 index_check_interval_s=3600)
    service, task = await start_service(path)
    try:
        with StandinServer("mini", 8) as mini:
            path.write_text(path.read_text() + (
                f'[models.mini]\nurl = "{mini.url}"\ndimension = 8\n'
                'column = "embedding_mini"\nflag_column = "has_mini"\n'
            ))
            assert await service.reload()

            async def indexed() -> bool:
                rows = await ann_indexes(conn, "embedding_mini")
                wanted = (index_name("embedding_mini"), "hnsw", True)
                return [tuple(row) for row in rows] == [wanted]

            await wait_until(indexed, timeout=30)
            assert await conn.fetchval(
                "SELECT column_name FROM embedworker_models WHERE name = 'mini'"
            ) == "embedding_mini"
    finally:
        await stop_service(service, task)


async def test_two_builders_at_once_make_one_index(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100)
    await insert_embeddings(conn, unit_vectors(3000, seed=4))
    e5 = next(model for model in model_columns(settings) if model.name == "e5_small")
    options = IndexOptions.from_settings(settings)

    outcomes = await asyncio.gather(*(
        ensure_index(settings.database_url, e5, options, min_rows=100) for _ in range(2)
    ))

    assert sorted(outcome.status for outcome in outcomes)[0] == "built"
    assert sorted(outcome.status for outcome in outcomes)[1] in ("busy", "exists")
    assert [tuple(row) for row in await ann_indexes(conn, "embedding_e5_small")] == [
        (E5_INDEX, "hnsw", True)
    ]


async def test_two_daemons_build_the_index_once(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100, index_check_interval_s=0.1)
    await insert_embeddings(conn, unit_vectors(3000, seed=5))
    async with RunningService(settings), RunningService(settings):

        async def valid() -> bool:
            return any(row["valid"] for row in await ann_indexes(conn, "embedding_e5_small"))

        await wait_until(valid, timeout=60)
        await asyncio.sleep(0.5)  # several more checks by both daemons
        assert [tuple(row) for row in await ann_indexes(conn, "embedding_e5_small")] == [
            (E5_INDEX, "hnsw", True)
        ]


async def build_and_kill(conn: asyncpg.Connection, settings: Settings, *, cancel: bool) -> object:
    """Start a build, then cancel its statement (or end its session) from outside."""
    e5 = next(model for model in model_columns(settings) if model.name == "e5_small")
    build = asyncio.create_task(ensure_index(
        settings.database_url, e5, IndexOptions.from_settings(settings), min_rows=0
    ))

    async def building() -> bool:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_progress_create_index"))

    await wait_until(building, timeout=30, interval=0.005)
    stop = "pg_cancel_backend" if cancel else "pg_terminate_backend"
    assert await conn.fetchval(f"SELECT {stop}(pid) FROM pg_stat_progress_create_index")
    try:
        return await build
    except Exception as exc:
        return exc


async def test_a_failed_build_drops_its_invalid_index(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100)
    await insert_embeddings(conn, unit_vectors(8000, seed=6))

    outcome = await build_and_kill(conn, settings, cancel=True)

    assert getattr(outcome, "status", None) == "failed", outcome
    assert await ann_indexes(conn, "embedding_e5_small") == []


async def test_an_invalid_index_left_by_a_dead_builder_is_dropped_and_rebuilt(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100, index_check_interval_s=0.2)
    await insert_embeddings(conn, unit_vectors(8000, seed=7))
    outcome = await build_and_kill(conn, settings, cancel=False)
    assert isinstance(outcome, Exception), outcome  # the builder lost its connection

    async def invalid_left() -> bool:
        rows = await ann_indexes(conn, "embedding_e5_small")
        return [tuple(row) for row in rows] == [(E5_INDEX, "hnsw", False)]

    await wait_until(invalid_left, timeout=10)  # the terminated backend is gone

    async with RunningService(settings):

        async def valid() -> bool:
            rows = await ann_indexes(conn, "embedding_e5_small")
            return [tuple(row) for row in rows] == [(E5_INDEX, "hnsw", True)]

        await wait_until(valid, timeout=60)


async def test_a_daemon_stopped_during_a_build_cancels_it(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(index_min_rows=100)
    await insert_embeddings(conn, unit_vectors(20000, seed=9))
    async with RunningService(settings):

        async def building() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_progress_create_index"))

        await wait_until(building, timeout=30, interval=0.005)

    async def stopped() -> bool:
        return not await building()

    await wait_until(stopped, timeout=5)
    rows = await ann_indexes(conn, "embedding_e5_small")
    assert [tuple(row) for row in rows] == [(E5_INDEX, "hnsw", False)]


async def test_index_command_check_and_status(
    conn: asyncpg.Connection, config_file: Path,  # noqa: F811
) -> None:
    await insert_embeddings(conn, unit_vectors(50, seed=8))
    await conn.execute("CREATE INDEX bge_ivf ON embeddings"
                       " USING ivfflat (embedding_bge_m3 vector_cosine_ops) WITH (lists = 1)")
    small = {"EMBEDWORKER_INDEX_MIN_ROWS": "20"}

    checked = await asyncio.to_thread(cli, config_file, "check", **small)
    lines = {line.split(":")[0]: line for line in checked.stdout.splitlines()}
    assert lines["warn  index e5_small"].endswith("or run `embedworker index e5_small`")
    assert "DROP INDEX bge_ivf" in lines["warn  index bge_m3"]
    status = json.loads((await asyncio.to_thread(cli, config_file, "status", "--json")).stdout)
    assert status["models"]["e5_small"]["index"] == {"state": "none", "name": None,
                                                     "method": None}
    assert status["models"]["bge_m3"]["index"] == {"state": "ready", "name": "bge_ivf",
                                                   "method": "ivfflat"}

    built = await asyncio.to_thread(cli, config_file, "index", "e5_small")
    assert built.returncode == 0, built.stderr
    assert built.stdout.splitlines()[-1].startswith(f"e5_small: built {E5_INDEX} in ")
    again = await asyncio.to_thread(cli, config_file, "index")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"e5_small: already indexed (hnsw {E5_INDEX})",
        "bge_m3: already indexed (ivfflat bge_ivf)",
    ]
    unknown = await asyncio.to_thread(cli, config_file, "index", "minilm")
    assert unknown.returncode == 2
    assert "no enabled model named 'minilm'" in unknown.stderr

    checked = await asyncio.to_thread(cli, config_file, "check", **small)
    assert f"ok    index e5_small: hnsw {E5_INDEX}" in checked.stdout.splitlines()
    text = (await asyncio.to_thread(cli, config_file, "status")).stdout
    e5_line = next(line for line in text.splitlines() if line.startswith("e5_small"))
    assert f"hnsw {E5_INDEX}" in e5_line
