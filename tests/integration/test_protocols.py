"""Every protocol end to end against loopback servers: the right vectors in the right rows,
batch-size answers, base64, replicas and rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.service import Service
from embedworker.standin import StandinServer, deterministic_vector
from tests.helpers import close_to, expected_bge, insert_items, statuses, wait_until

TEXTS = [f"protocol test text number {n}" for n in range(90)]


def e5_settings(protocol: str, url: str | list[str], **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"protocol": protocol, "task": None, **extra}
    values["urls" if isinstance(url, list) else "url"] = url
    if protocol in ("openai", "ollama"):
        values.setdefault("model", "e5_small")
    return values


async def drain(settings: Settings) -> int:
    return await Service(settings, drain=True).run()


async def assert_all_embedded(db: asyncpg.Connection, prefix: str = "") -> None:
    assert await statuses(db) == {"completed": len(TEXTS)}
    rows = await db.fetch("SELECT content_text, embedding_e5_small, embedding_bge_m3"
                          " FROM embeddings ORDER BY content_id")
    assert [row["content_text"] for row in rows] == TEXTS
    for row in rows:
        text = row["content_text"]
        assert close_to(row["embedding_e5_small"],
                        deterministic_vector("e5_small", prefix + text, 384))
        assert close_to(row["embedding_bge_m3"], expected_bge(text))


@pytest.fixture
def server_for() -> Iterator[Callable[..., StandinServer]]:
    started: list[StandinServer] = []

    def start(protocol: str, **options: Any) -> StandinServer:
        server = StandinServer("e5_small", 384, protocol=protocol, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("protocol", ["hfspace", "tei", "openai", "ollama"])
async def test_each_protocol_fills_the_right_rows(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
    protocol: str,
) -> None:
    server = server_for(protocol, max_batch=16)
    await insert_items(db, TEXTS)

    settings = make_settings(models={"e5_small": e5_settings(protocol, server.url, batch_size=16)})
    assert await drain(settings) == 0

    await assert_all_embedded(db)
    assert server.inputs_embedded == len(TEXTS)


async def test_prefix_is_added_for_servers_that_do_not(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
) -> None:
    server = server_for("tei")
    await insert_items(db, TEXTS)

    await drain(make_settings(models={"e5_small": e5_settings("tei", server.url,
                                                              prefix="passage: ")}))

    await assert_all_embedded(db, prefix="passage: ")


@pytest.mark.parametrize("oversize_status", [413, 422])
async def test_tei_batch_size_answers_split_the_batch(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer], oversize_status: int,
) -> None:
    server = server_for("tei", max_batch=8, tei_oversize_status=oversize_status)
    await insert_items(db, TEXTS)

    # /info caps later batches at 8; a first batch that is still too big is split on 413/422
    await drain(make_settings(models={"e5_small": e5_settings("tei", server.url,
                                                              batch_size=64)}))

    await assert_all_embedded(db)
    assert max(server.batch_sizes) <= 8


async def test_tei_oversize_answer_without_info_is_split(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
) -> None:
    server = server_for("hfspace", max_batch=8)  # answers 413 and has no /info
    await insert_items(db, TEXTS)

    await drain(make_settings(models={"e5_small": e5_settings("hfspace", server.url,
                                                              batch_size=64)}))

    await assert_all_embedded(db)
    assert max(server.batch_sizes) <= 8


@pytest.mark.parametrize("server_base64", [True, False])
async def test_openai_base64_and_float_answers(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer], server_base64: bool,
) -> None:
    server = server_for("openai", openai_base64=server_base64, api_key="sk-test")
    await insert_items(db, TEXTS)

    await drain(make_settings(models={"e5_small": e5_settings(
        "openai", server.url, encoding_format="base64", api_key="sk-test")}))

    await assert_all_embedded(db)


async def test_a_replica_going_down_and_coming_back(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
) -> None:
    first, second = server_for("tei", max_batch=8), server_for("tei", max_batch=8)
    first.down()
    await insert_items(db, TEXTS[:40])
    settings = make_settings(batch_size=8, models={"e5_small": e5_settings(
        "tei", [first.url, second.url], batch_size=8)})

    await drain(settings)

    assert await statuses(db) == {"completed": 40}
    assert second.inputs_embedded == 40
    assert await db.fetchval("SELECT max(retry_count) FROM embedding_queue") == 0

    first.up()
    await insert_items(db, TEXTS[40:], first_id=41)
    async with RunningDaemon(settings):
        await wait_until(lambda: _completed(db, len(TEXTS)), timeout=30)
    assert first.inputs_embedded > 0, "the replica that came back got no work"
    await assert_all_embedded(db)


async def test_rate_limit_is_respected(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
) -> None:
    server = server_for("openai", max_batch=1)
    await insert_items(db, TEXTS[:30])
    settings = make_settings(batch_size=1, concurrency=8, models={"e5_small": e5_settings(
        "openai", server.url, batch_size=1, max_concurrency=8, rate_limit_rps=10)})

    started = time.monotonic()
    await drain(settings)
    elapsed = time.monotonic() - started

    assert await statuses(db) == {"completed": 30}
    assert server.requests == 30
    # A full bucket lets the first 10 through at once; the other 20 come at 10 per second, so
    # the run cannot be shorter than 2 s (unlimited, these 30 tiny requests take a fraction).
    assert elapsed >= 1.9


class RunningDaemon:
    def __init__(self, settings: Settings):
        self.service = Service(settings)

    async def __aenter__(self) -> RunningDaemon:
        import asyncio

        self.task = asyncio.create_task(self.service.run())
        await asyncio.wait_for(self.service.ready.wait(), 20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        self.service.request_stop()
        assert await asyncio.wait_for(self.task, 30) == 0


async def _completed(db: asyncpg.Connection, count: int) -> bool:
    return await statuses(db) == {"completed": count}


async def test_refused_credentials_hold_the_model_without_spending_retries(
    db: asyncpg.Connection, make_settings: Callable[..., Settings],
    server_for: Callable[..., StandinServer],
) -> None:
    server = server_for("hfspace", api_key="the right key")
    await insert_items(db, TEXTS[:3])
    settings = make_settings(models={"e5_small": e5_settings(
        "hfspace", server.url, api_key="a wrong key")})

    async def all_refused() -> bool:
        rows = await db.fetch("SELECT error_message FROM embedding_queue")
        return all("e5_small: unavailable: HTTP 401" in (r["error_message"] or "") for r in rows)

    async with RunningDaemon(settings) as daemon:
        await wait_until(all_refused, timeout=20)
        report = await daemon.service.readiness()
        assert report.details["models"] == {"e5_small": False, "bge_m3": True}
        assert "HTTP 401" in report.details["model_problems"]["e5_small"]
        rows = await db.fetch("SELECT status, retry_count FROM embedding_queue")
        assert {(r["status"], r["retry_count"]) for r in rows} == {("queued", 0)}
        assert "check the model's api_key" in await db.fetchval(
            "SELECT error_message FROM embedding_queue LIMIT 1")
        # The other model is not held up: its vectors are stored already.
        assert await db.fetchval(
            "SELECT count(*) FROM embeddings WHERE has_bge_embedding") == 3

        server.api_key = "a wrong key"  # the server now takes the daemon's key
        await wait_until(lambda: _completed(db, 3), timeout=30)

    rows = await db.fetch("SELECT content_text, embedding_e5_small FROM embeddings")
    for row in rows:
        assert close_to(row["embedding_e5_small"],
                        deterministic_vector("e5_small", row["content_text"], 384))
