"""One model down never stops the others: its work is parked, spends nothing, does not spin,
and is caught up on its own when the model answers again."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from embedworker.config import Settings
from embedworker.service import Service
from embedworker.standin import StandinServer
from tests.helpers import close_to, expected_bge, expected_e5, insert_items, statuses, wait_until
from tests.integration.test_worker import RunningService


async def parked(db: asyncpg.Connection, model: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM embedding_queue WHERE status = 'queued' AND waiting_for = $1",
        [model],
    )
    return count


async def test_a_model_down_longer_than_the_lease_stops_nothing_else(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    texts = [f"posted while bge is down {n}" for n in range(40)]
    bge_server.faults.healthy = False  # 503 to embeddings and to its health check
    await insert_items(db, texts)

    async with RunningService(make_settings(lease_timeout_s=1)):
        await wait_until(lambda: _parked_count(db, "bge_m3", 40), timeout=30)
        rows = await db.fetch(
            "SELECT content_text, embedding_e5_small, has_e5_embedding, has_bge_embedding,"
            " embedding_bge_m3, status FROM embeddings ORDER BY content_id"
        )
        assert [row["content_text"] for row in rows] == texts
        for row in rows:
            assert row["has_e5_embedding"]
            assert close_to(row["embedding_e5_small"], expected_e5(row["content_text"]))
            assert not row["has_bge_embedding"]
            assert row["embedding_bge_m3"] is None
            assert row["status"] == "pending"
        spent = await db.fetchrow(
            "SELECT max(retry_count) AS retries, max(reclaim_count) AS reclaims"
            " FROM embedding_queue"
        )
        assert (spent["retries"], spent["reclaims"]) == (0, 0)

        # Nothing spins while bge stays down: parked rows are not claimed again, and bge is
        # only probed (health checks), never sent the items again.
        before = await db.fetch("SELECT id, xmin::text AS version FROM embedding_queue")
        embeds = (e5_server.requests, bge_server.requests)
        probes = bge_server.gets
        await wait_until(lambda: _at_least(bge_server.gets, probes + 2), timeout=40)
        assert await db.fetch("SELECT id, xmin::text AS version FROM embedding_queue") == before
        assert (e5_server.requests, bge_server.requests) == embeds

        # Fresh content still gets its e5 vector at once.
        await insert_items(db, ["written during the outage"], first_id=100)
        await wait_until(lambda: _parked_count(db, "bge_m3", 41), timeout=15)

        # bge answers again: everything is caught up with no command, e5 is not called again.
        e5_server.reset_counters()
        bge_server.faults.healthy = True
        await wait_until(lambda: _all_completed(db, 41), timeout=60)
        assert e5_server.texts == []
        assert sorted(bge_server.texts) == sorted([*texts, "written during the outage"])

    rows = await db.fetch(
        "SELECT content_text, embedding_bge_m3, status, has_e5_embedding, has_bge_embedding"
        " FROM embeddings"
    )
    assert len(rows) == 41
    for row in rows:
        assert row["status"] == "completed"
        assert row["has_e5_embedding"]
        assert row["has_bge_embedding"]
        assert close_to(row["embedding_bge_m3"], expected_bge(row["content_text"]))
    assert await db.fetchval("SELECT max(retry_count) FROM embedding_queue") == 0
    assert await db.fetchval("SELECT count(*) FROM embedding_queue WHERE waiting_for IS NOT NULL"
                             ) == 0


async def test_drain_keeps_what_it_could_and_a_later_run_catches_up(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    texts = [f"queued while e5 is away {n}" for n in range(10)]
    e5_server.down()
    await insert_items(db, texts)

    assert await Service(make_settings(drain_outage_wait_s=1), drain=True).run() == 69

    assert await parked(db, "e5_small") == 10
    assert await db.fetchval("SELECT count(*) FROM embeddings WHERE has_bge_embedding"
                             " AND NOT has_e5_embedding AND status = 'pending'") == 10

    # The copy that parked them is gone; the next one releases them at start.
    e5_server.up()
    bge_server.reset_counters()
    assert await Service(make_settings(), drain=True).run() == 0
    assert await statuses(db) == {"completed": 10}
    assert bge_server.texts == []
    assert sorted(e5_server.texts) == sorted(texts)


async def test_refused_credentials_park_the_items_of_that_model_only(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    e5_server.api_key = "the right key"
    await insert_items(db, [f"item {n}" for n in range(5)])
    settings = make_settings(models={"e5_small": {"api_key": "a wrong key"}})

    async with RunningService(settings):
        await wait_until(lambda: _parked_count(db, "e5_small", 5), timeout=30)
        assert await db.fetchval("SELECT count(*) FROM embeddings WHERE has_bge_embedding") == 5
        reasons = await db.fetch("SELECT DISTINCT error_message FROM embedding_queue")
        assert all("HTTP 401" in row["error_message"] for row in reasons)
        e5_server.api_key = "a wrong key"  # as if the key had been rotated on the server
        await wait_until(lambda: _all_completed(db, 5), timeout=60)
    assert await db.fetchval("SELECT max(retry_count) FROM embedding_queue") == 0


async def test_every_model_down_claims_nothing(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    e5_server.down()
    bge_server.down()
    await insert_items(db, [f"item {n}" for n in range(3)])

    async with RunningService(make_settings()):
        await wait_until(lambda: _parked_count(db, "both", 3), timeout=30)
        before = await db.fetch("SELECT id, xmin::text AS version FROM embedding_queue")
        await insert_items(db, ["arrives while both are down"], first_id=10)
        await wait_until(lambda: _due_count(db, 1), timeout=5)
        assert await db.fetch(
            "SELECT id, xmin::text AS version FROM embedding_queue WHERE content_id < 10"
        ) == before
        e5_server.up()
        await wait_until(lambda: _parked_count(db, "bge_m3", 4), timeout=30)
        bge_server.up()
        await wait_until(lambda: _all_completed(db, 4), timeout=60)


async def _parked_count(db: asyncpg.Connection, model: str, expected: int) -> bool:
    if model == "both":
        count = await db.fetchval(
            "SELECT count(*) FROM embedding_queue WHERE status = 'queued'"
            " AND waiting_for @> ARRAY['e5_small', 'bge_m3']"
        )
        return bool(count == expected)
    return await parked(db, model) == expected


async def _due_count(db: asyncpg.Connection, expected: int) -> bool:
    count = await db.fetchval(
        "SELECT count(*) FROM embedding_queue WHERE status = 'queued' AND waiting_for IS NULL"
    )
    return bool(count == expected)


async def _all_completed(db: asyncpg.Connection, count: int) -> bool:
    return await statuses(db) == {"completed": count}


async def _at_least(value: int, expected: int) -> bool:
    return value >= expected
