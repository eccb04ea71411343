"""The worker end to end, in process: claim, embed with both models, write, finish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.service import Service
from embedworker.standin import StandinServer
from tests.helpers import (
    close_to,
    expected_bge,
    expected_e5,
    insert_items,
    statuses,
    wait_until,
)


async def drain(settings: Settings) -> int:
    return await Service(settings, drain=True).run()


async def test_drain_writes_both_vectors(
    db: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    texts = [f"lesson {n}: photosynthesis turns light into sugar" for n in range(70)]
    await insert_items(db, texts)

    assert await drain(make_settings()) == 0

    assert await statuses(db) == {"completed": 70}
    rows = await db.fetch(
        "SELECT content_id, content_text, content_hash, embedding_e5_small, embedding_bge_m3,"
        " has_e5_embedding, has_bge_embedding, status FROM embeddings ORDER BY content_id"
    )
    assert len(rows) == 70
    for row, text in zip(rows, texts, strict=True):
        assert row["content_text"] == text
        assert row["status"] == "completed"
        assert row["has_e5_embedding"]
        assert row["has_bge_embedding"]
        assert close_to(row["embedding_e5_small"], expected_e5(text))
        assert close_to(row["embedding_bge_m3"], expected_bge(text))


class RunningService:
    """The daemon running in this event loop, stopped like SIGTERM would."""

    def __init__(self, settings: Settings):
        self.service = Service(settings)
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> RunningService:
        self.task = asyncio.create_task(self.service.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.service.request_stop()
        assert await asyncio.wait_for(self.task, 30) == 0


async def queue_row(db: asyncpg.Connection, content_id: int) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT status, retry_count, error_message, scheduled_at - now() AS wait"
        " FROM embedding_queue WHERE content_id = $1",
        content_id,
    )
    assert row is not None
    return row


async def test_rejected_item_fails_with_reason_and_spares_its_batch(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.faults.poison_marker = "POISON"
    await insert_items(db, [f"good text {n}" for n in range(9)] + ["a POISON text"])

    assert await drain(make_settings()) == 0

    assert await statuses(db) == {"completed": 9, "failed": 1}
    poison = await queue_row(db, 10)
    assert poison["retry_count"] == 3
    assert "input rejected" in poison["error_message"]
    assert poison["error_message"].startswith("e5_small:")
    # the model that did accept it keeps its vector; the other stays empty
    row = await db.fetchrow("SELECT has_e5_embedding, embedding_e5_small, has_bge_embedding,"
                            " embedding_bge_m3, status FROM embeddings WHERE content_id = 10")
    assert not row["has_e5_embedding"]
    assert row["embedding_e5_small"] is None
    assert row["has_bge_embedding"]
    assert close_to(row["embedding_bge_m3"], expected_bge("a POISON text"))
    assert row["status"] == "pending"


async def test_failure_is_retried_after_backoff(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.faults.poison_marker = "POISON"
    await insert_items(db, ["POISON once"])

    await drain(make_settings(retry_delay_s=100, retry_delay_max_s=1000))

    row = await queue_row(db, 1)
    assert (row["status"], row["retry_count"]) == ("queued", 1)
    assert 70 <= row["wait"].total_seconds() <= 101
    assert "input rejected" in row["error_message"]


@pytest.mark.parametrize(
    ("defect", "reason"),
    [
        ("nan", "NaN or infinite value"),
        ("wrong_dim", "dimension"),
        ("wrong_count", "vectors for"),
        ("not_json", "not JSON"),
    ],
)
async def test_malformed_response_is_never_written(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    defect: str,
    reason: str,
) -> None:
    e5_server.faults.malform = defect
    await insert_items(db, ["one text", "another text"])

    await drain(make_settings())

    assert await statuses(db) == {"failed": 2}
    for content_id in (1, 2):
        error = (await queue_row(db, content_id))["error_message"]
        assert "malformed response" in error
        assert reason in error
    assert await db.fetchval(
        "SELECT count(*) FROM embeddings WHERE has_e5_embedding OR embedding_e5_small IS NOT NULL"
    ) == 0


async def test_partial_success_retries_only_the_missing_model(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    bge_server.faults.poison_marker = "flaky"
    await insert_items(db, ["a flaky text"])
    await drain(make_settings(retry_delay_s=3600, retry_delay_max_s=3600))
    assert (await queue_row(db, 1))["status"] == "queued"
    assert await db.fetchval("SELECT has_e5_embedding FROM embeddings") is True

    bge_server.faults.poison_marker = None
    e5_calls = e5_server.requests
    await db.execute("UPDATE embedding_queue SET scheduled_at = now()")
    await drain(make_settings())

    assert (await queue_row(db, 1))["status"] == "completed"
    assert e5_server.requests == e5_calls
    row = await db.fetchrow("SELECT * FROM embeddings")
    assert row["status"] == "completed"
    assert close_to(row["embedding_e5_small"], expected_e5("a flaky text"))
    assert close_to(row["embedding_bge_m3"], expected_bge("a flaky text"))


async def test_up_to_date_item_is_completed_without_model_calls(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    await insert_items(db, ["already embedded"])
    await drain(make_settings())
    calls = (e5_server.requests, bge_server.requests)
    await db.execute("UPDATE embedding_queue SET status = 'queued'")

    await drain(make_settings())

    assert await statuses(db) == {"completed": 1}
    assert (e5_server.requests, bge_server.requests) == calls


async def test_empty_text_fails_without_model_calls(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    await insert_items(db, [" \t\n "])

    await drain(make_settings())

    row = await queue_row(db, 1)
    assert row["status"] == "failed"
    assert "empty text" in row["error_message"]
    assert e5_server.requests == 0


async def test_oversized_batches_are_split(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    await insert_items(db, [f"text number {n}" for n in range(100)])

    await drain(make_settings(batch_size=100, models={"e5_small": {"batch_size": 100}}))

    assert await statuses(db) == {"completed": 100}
    assert max(e5_server.batch_sizes) <= 64


async def test_notify_wakes_the_running_daemon(
    db: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    await insert_items(db, ["queued while the daemon was down"])
    async with RunningService(make_settings(poll_interval_s=300)) as running:
        await wait_until(lambda: _status_is(db, 1, "completed"))
        await wait_until(lambda: _listening(running))
        # the seed's own test item, a plain INSERT
        await db.execute(
            "INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,"
            " priority, status) VALUES ('test', 1, 'This is a test embedding', md5('test'), 5,"
            " 'queued')"
        )
        await wait_until(lambda: _status_is(db, 1, "completed", "test"), timeout=10)
    assert await db.fetchval("SELECT has_e5_embedding AND has_bge_embedding FROM embeddings"
                             " WHERE content_type = 'test'")


async def test_model_outage_spends_no_retries(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.down()
    await insert_items(db, [f"written during an outage {n}" for n in range(20)])
    async with RunningService(make_settings(retry_delay_s=0.1, retry_delay_max_s=0.1)):
        await wait_until(lambda: _retried(db), timeout=15)
        e5_server.up()
        await wait_until(lambda: _all_completed(db, 20), timeout=30)
    assert await db.fetchval("SELECT max(retry_count) FROM embedding_queue") == 0


async def test_drain_gives_up_on_a_lasting_outage_with_exit_69(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.down()
    await insert_items(db, [f"queued during an outage {n}" for n in range(5)])

    exit_code = await asyncio.wait_for(
        Service(make_settings(drain_outage_wait_s=1), drain=True).run(), timeout=60
    )

    assert exit_code == 69
    rows = await db.fetch("SELECT status, retry_count, error_message FROM embedding_queue")
    assert {(row["status"], row["retry_count"]) for row in rows} == {("queued", 0)}
    assert all("e5_small: unavailable" in row["error_message"] for row in rows)


async def test_drain_rides_out_a_short_outage(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.down()
    await insert_items(db, [f"queued during an outage {n}" for n in range(5)])
    drain = asyncio.create_task(Service(make_settings(), drain=True).run())

    async def outage_seen() -> bool:
        return bool(await db.fetchval(
            "SELECT count(*) FROM embedding_queue WHERE error_message LIKE '%unavailable%'"))

    await wait_until(outage_seen, timeout=15)
    e5_server.up()

    assert await asyncio.wait_for(drain, timeout=60) == 0
    assert await statuses(db) == {"completed": 5}


async def test_text_changed_in_flight_ends_with_the_new_text(
    db: asyncpg.Connection, make_settings: Callable[..., Settings], e5_server: StandinServer
) -> None:
    e5_server.faults.latency_s = 1.0
    await db.execute("SELECT queue_for_embedding('course', 1, 'the old text')")
    async with RunningService(make_settings()):
        await wait_until(lambda: _status_is(db, 1, "processing", "course"))
        await db.execute("SELECT queue_for_embedding('course', 1, 'the new text')")
        await wait_until(lambda: _status_is(db, 1, "completed", "course"), timeout=15)
    row = await db.fetchrow("SELECT * FROM embeddings")
    assert row["content_text"] == "the new text"
    assert close_to(row["embedding_e5_small"], expected_e5("the new text"))
    assert close_to(row["embedding_bge_m3"], expected_bge("the new text"))


async def _status_is(
    db: asyncpg.Connection, content_id: int, status: str, content_type: str = "post"
) -> bool:
    current = await db.fetchval(
        "SELECT status FROM embedding_queue WHERE content_type = $1 AND content_id = $2",
        content_type,
        content_id,
    )
    return bool(current == status)


async def _listening(running: RunningService) -> bool:
    return running.task is not None and not running.task.done()


async def _retried(db: asyncpg.Connection) -> bool:
    return bool(await db.fetchval(
        "SELECT count(*) > 0 FROM embedding_queue WHERE error_message LIKE '%unavailable%'"
    ))


async def _all_completed(db: asyncpg.Connection, count: int) -> bool:
    return await statuses(db) == {"completed": count}
