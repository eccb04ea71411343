"""Model identity: every vector records the version that made it; a new version or a new model
re-embeds nothing by itself; `reembed` does, with that model only, behind fresh content."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import asyncpg

from embedworker.config import Settings, load_settings
from embedworker.db.coverage import ModelCoverage, model_coverage
from embedworker.db.reembed import ReembedProgress, reembed
from embedworker.service import Service, model_columns
from embedworker.standin import TASK_PREFIXES, StandinServer, deterministic_vector
from tests.helpers import close_to, insert_items, statuses, wait_until
from tests.integration.test_worker import RunningService


def expected_e5_v2(text: str) -> list[float]:
    """What the upgraded e5 (another checkpoint, same dimension) gives for a passage."""
    return deterministic_vector("e5_small_v2", TASK_PREFIXES["passage"] + text, 384)


async def drain(settings: Settings) -> int:
    return await Service(settings, drain=True).run()


async def coverage(db: asyncpg.Connection, settings: Settings) -> dict[str, ModelCoverage]:
    return await model_coverage(db, model_columns(settings))


async def queue_again(db: asyncpg.Connection, settings: Settings, model: str) -> ReembedProgress:
    columns = {column.name: column for column in model_columns(settings)}
    return await reembed(db, columns[model], chunk_size=7)


async def test_upgrading_a_model_in_place(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    bge_server: StandinServer,
) -> None:
    texts = [f"lesson {n} about the water cycle" for n in range(30)]
    await insert_items(db, texts)
    assert await drain(make_settings()) == 0
    assert await db.fetchval(
        "SELECT count(*) FROM embeddings WHERE embedding_versions = '{\"e5_small\": \"1\","
        " \"bge_m3\": \"1\"}'::jsonb") == 30

    with StandinServer("e5_small_v2", 384) as new_e5:
        upgraded = make_settings(models={"e5_small": {"url": new_e5.url, "version": "2"}})
        cover = await coverage(db, upgraded)
        assert cover["e5_small"] == ModelCoverage("2", current=0, outdated=30, missing=0)
        assert cover["bge_m3"] == ModelCoverage("1", current=30, outdated=0, missing=0)

        # A new version re-embeds nothing by itself.
        assert await drain(upgraded) == 0
        assert new_e5.requests == 0

        # An item queued again with an unchanged text is not skipped for the model whose
        # vector is of another version, and only that model is called.
        await db.execute("UPDATE embedding_queue SET status = 'queued' WHERE content_id = 1")
        assert await drain(upgraded) == 0
        assert new_e5.texts == [texts[0]]
        assert sorted(bge_server.texts) == sorted(texts)  # the first drain's, nothing since

        bge_server.reset_counters()
        new_e5.reset_counters()
        new_e5.faults.latency_s = 0.05
        done = await queue_again(db, upgraded, "e5_small")
        assert (done.scanned, done.needed, done.queued) == (30, 29, 29)
        priorities = await db.fetch(
            "SELECT DISTINCT priority FROM embedding_queue WHERE status = 'queued'"
        )
        assert [row["priority"] for row in priorities] == [10]

        # While the re-embed runs, every row keeps a searchable e5 vector.
        async def every_row_searchable_until_done() -> bool:
            assert await db.fetchval(
                "SELECT count(*) FROM embeddings"
                " WHERE NOT has_e5_embedding OR embedding_e5_small IS NULL") == 0
            return await _nothing_left(db)

        async with RunningService(upgraded):
            await wait_until(every_row_searchable_until_done, timeout=30)

        assert sorted(new_e5.texts) == sorted(texts[1:])
        assert bge_server.requests == 0
        rows = await db.fetch(
            "SELECT content_text, embedding_e5_small, embedding_versions, status FROM embeddings"
        )
        for row in rows:
            assert close_to(row["embedding_e5_small"], expected_e5_v2(row["content_text"]))
            assert row["embedding_versions"] == '{"bge_m3": "1", "e5_small": "2"}'
            assert row["status"] == "completed"
        assert (await coverage(db, upgraded))["e5_small"] == ModelCoverage("2", 30, 0, 0)

        # Safe to repeat: nothing is left to queue.
        again = await queue_again(db, upgraded, "e5_small")
        assert (again.needed, again.queued) == (0, 0)


async def test_an_added_model_fills_only_when_asked(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    texts = [f"course {n}" for n in range(12)]
    await insert_items(db, texts)
    assert await drain(make_settings()) == 0
    await db.execute("ALTER TABLE embeddings ADD COLUMN embedding_mini vector(64),"
                     " ADD COLUMN has_mini_embedding boolean DEFAULT false")

    with StandinServer("mini", 64) as mini:
        three = make_settings(models={"mini": {
            "url": mini.url, "dimension": 64, "column": "embedding_mini",
            "flag_column": "has_mini_embedding",
        }})
        assert (await coverage(db, three))["mini"] == ModelCoverage("1", 0, 0, 12)
        assert await drain(three) == 0
        assert mini.requests == 0

        # New content gets all three at once.
        await insert_items(db, ["a brand new course"], first_id=100)
        assert await drain(three) == 0
        assert mini.texts == ["a brand new course"]

        e5_server.reset_counters()
        bge_server.reset_counters()
        done = await queue_again(db, three, "mini")
        assert (done.scanned, done.needed, done.queued) == (13, 12, 12)
        assert await drain(three) == 0
        assert sorted(mini.texts) == sorted([*texts, "a brand new course"])
        assert (e5_server.requests, bge_server.requests) == (0, 0)
        assert (await coverage(db, three))["mini"] == ModelCoverage("1", 13, 0, 0)
        assert await db.fetchval("SELECT count(*) FROM embeddings WHERE status = 'completed'"
                                 " AND has_mini_embedding") == 13


async def test_reembed_goes_behind_fresh_content(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
) -> None:
    await insert_items(db, [f"old row {n}" for n in range(60)])
    assert await drain(make_settings()) == 0
    upgraded = make_settings(concurrency=1, batch_size=4,
                             models={"e5_small": {"version": "2"}})
    done = await queue_again(db, upgraded, "e5_small")
    assert done.queued == 60
    e5_server.faults.latency_s = 0.1

    async with RunningService(upgraded):
        await wait_until(lambda: _reembedded(db, 4), timeout=20)
        await insert_items(db, ["fresh while the re-embed runs"], first_id=1000)
        await wait_until(lambda: _completed(db, 1000), timeout=20)
        # The fresh item overtook the re-embed backlog.
        assert await db.fetchval(
            "SELECT count(*) FROM embedding_queue WHERE priority = 10 AND status <> 'completed'"
        ) >= 40


def write_config(path: Path, settings: Settings, e5_url: str, e5_version: str) -> None:
    """A config file like ``settings`` (two models), with e5 at ``e5_url`` and ``e5_version``."""
    path.write_text(
        f'database_url = "{settings.database_url}"\n'
        "concurrency = 2\nbatch_size = 4\nretry_delay_s = 0\nretry_delay_max_s = 0\n"
        'lease_timeout_s = 5\nshutdown_grace_s = 5\nlog_level = "warning"\n'
        f'[models.e5_small]\nurl = "{e5_url}"\nversion = "{e5_version}"\n'
        f'[models.bge_m3]\nurl = "{settings.models["bge_m3"].urls[0]}"\n'
    )


async def test_a_reload_that_changes_the_version_while_a_reembed_runs(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    bge_server: StandinServer,
    tmp_path: Path,
) -> None:
    texts = [f"note {n}" for n in range(40)]
    await insert_items(db, texts)
    settings = make_settings()
    assert await drain(settings) == 0

    with StandinServer("e5_small_v2", 384) as v2, StandinServer("e5_small_v3", 384) as v3:
        v2.faults.latency_s = 0.1
        path = tmp_path / "embedworker.toml"
        write_config(path, settings, v2.url, "2")
        service = Service(load_settings(path), config_path=path)
        assert (await queue_again(db, service.settings, "e5_small")).queued == 40
        bge_server.reset_counters()
        task = asyncio.create_task(service.run())
        await wait_until(lambda: _recorded(db, "2", 8), timeout=20)
        write_config(path, settings, v3.url, "3")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: _reloaded(service), timeout=20)
        assert service.settings.models["e5_small"].version == "3"
        await wait_until(lambda: _nothing_left(db), timeout=30)
        service.request_stop()
        assert await asyncio.wait_for(task, 30) == 0

        # Whatever was written carries the version that made it.
        version_3 = service.settings
        rows = await db.fetch("SELECT content_text, embedding_e5_small,"
                              " embedding_versions->>'e5_small' AS version FROM embeddings")
        for row in rows:
            made_by = {"2": "e5_small_v2", "3": "e5_small_v3"}[row["version"]]
            assert close_to(row["embedding_e5_small"], deterministic_vector(
                made_by, TASK_PREFIXES["passage"] + row["content_text"], 384))
        outdated = (await coverage(db, version_3))["e5_small"].outdated
        assert outdated == sum(1 for row in rows if row["version"] == "2")
        assert v3.requests > 0

        # The operator repeats the re-embed; afterwards no row is left outdated.
        assert (await queue_again(db, version_3, "e5_small")).queued == outdated
        assert await drain(version_3) == 0
        assert (await coverage(db, version_3))["e5_small"] == ModelCoverage("3", 40, 0, 0)
        assert bge_server.requests == 0


async def test_two_workers_reembed_together(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    bge_server: StandinServer,
) -> None:
    texts = [f"profile {n}" for n in range(80)]
    await insert_items(db, texts)
    assert await drain(make_settings()) == 0
    with StandinServer("e5_small_v2", 384) as v2:
        v2.faults.latency_s = 0.02
        upgraded = make_settings(batch_size=5,
                                 models={"e5_small": {"url": v2.url, "version": "2"}})
        bge_server.reset_counters()
        # Two re-embed commands at once are safe: together they queue each row once.
        first, second = await asyncio.gather(
            _reembed_on_own_connection(db, upgraded), _reembed_on_own_connection(db, upgraded)
        )
        assert first.queued + second.queued == 80
        async with RunningService(upgraded), RunningService(upgraded):
            await wait_until(lambda: _nothing_left(db), timeout=60)
        assert sorted(v2.texts) == sorted(texts)  # each row sent once, none lost
        assert bge_server.requests == 0
        assert (await coverage(db, upgraded))["e5_small"] == ModelCoverage("2", 80, 0, 0)


async def _reembed_on_own_connection(db: asyncpg.Connection, settings: Settings) -> ReembedProgress:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await queue_again(conn, settings, "e5_small")
    finally:
        await conn.close()


async def _reloaded(service: Service) -> bool:
    return service.reloads >= 1


async def _reembedded(db: asyncpg.Connection, at_least: int) -> bool:
    count = await db.fetchval(
        "SELECT count(*) FROM embeddings WHERE embedding_versions->>'e5_small' = '2'"
    )
    return bool(count >= at_least)


async def _recorded(db: asyncpg.Connection, version: str, at_least: int) -> bool:
    count = await db.fetchval(
        "SELECT count(*) FROM embeddings WHERE embedding_versions->>'e5_small' = $1", version
    )
    return bool(count >= at_least)


async def _completed(db: asyncpg.Connection, content_id: int) -> bool:
    status = await db.fetchval(
        "SELECT status FROM embedding_queue WHERE content_id = $1", content_id
    )
    return bool(status == "completed")


async def _nothing_left(db: asyncpg.Connection) -> bool:
    return set(await statuses(db)) == {"completed"}
