"""The observability server on a real socket and a real database, spoken to with httpx."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedworker.db.connect import create_pool
from embedworker.db.stats import QueueStatus, queue_status
from embedworker.ops.metrics import Metrics
from embedworker.ops.server import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    HealthReport,
    ObservabilityServer,
    readiness,
)
from tests.helpers import insert_items, wait_until


@dataclass
class Checks:
    """What the fake health and readiness callables answer; tests flip these."""

    health: HealthReport = field(default_factory=lambda: HealthReport(ok=True))
    database: bool = True
    listener: bool = True
    models: dict[str, bool] = field(default_factory=lambda: {"e5_small": True, "bge_m3": True})
    problems: dict[str, str] = field(default_factory=dict)

    def healthz(self) -> HealthReport:  # a plain function: the server accepts both kinds
        return self.health

    async def readyz(self) -> HealthReport:
        return readiness(database=self.database, listener=self.listener, models=self.models,
                         model_problems=self.problems)


@dataclass
class Running:
    server: ObservabilityServer
    client: httpx.AsyncClient
    checks: Checks
    metrics: Metrics


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=2)
    yield pool
    await pool.close()


def client_for(server: ObservabilityServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", trust_env=False, timeout=10
    )


async def serve(
    status: Callable[[], Awaitable[QueueStatus]], checks: Checks | None = None, **options: float
) -> Running:
    checks = checks or Checks()
    metrics = Metrics(["e5_small", "bge_m3"])
    server = ObservabilityServer(
        "127.0.0.1", 0, health=checks.healthz, ready=checks.readyz, metrics=lambda: metrics,
        status=status, **options,
    )
    await server.start()
    return Running(server, client_for(server), checks, metrics)


@pytest.fixture
async def running(pool: asyncpg.Pool) -> AsyncIterator[Running]:
    running = await serve(lambda: queue_status(pool))
    yield running
    await running.client.aclose()
    await running.server.stop()


@pytest.fixture
async def bare() -> AsyncIterator[Running]:
    """A server without a database, for tests of the protocol alone."""
    running = await serve(broken)
    yield running
    await running.client.aclose()
    await running.server.stop()


async def never() -> QueueStatus:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def broken() -> QueueStatus:
    raise ConnectionRefusedError("database is down")


async def raw(server: ObservabilityServer, request: bytes) -> bytes:
    """Send raw bytes, half-close, and read the whole answer (the server closes every
    connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


def metric_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# --- /healthz and /readyz -------------------------------------------------------------------


async def test_healthz(running: Running) -> None:
    response = await running.client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "ok"

    running.checks.health = HealthReport(
        ok=False, reasons=("workers: no heartbeat for 400.0 s",), details={"loops": {}}
    )
    response = await running.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "reasons": ["workers: no heartbeat for 400.0 s"],
        "checks": {"loops": {}},
    }


async def test_readyz(running: Running) -> None:
    response = await running.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"

    running.checks.models = {"e5_small": False, "bge_m3": True}
    assert (await running.client.get("/readyz")).status_code == 200

    running.checks.listener = False
    running.checks.models = {"e5_small": False, "bge_m3": False}
    response = await running.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["reasons"] == [
        "listener: not connected", "models: none reachable (bge_m3, e5_small)",
    ]
    assert body["checks"]["database"] is True


async def test_a_check_that_raises_or_hangs_is_a_failure(pool: asyncpg.Pool) -> None:
    async def hangs() -> HealthReport:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def raises() -> HealthReport:
        raise RuntimeError("boom")

    metrics = Metrics()
    server = ObservabilityServer(
        "127.0.0.1", 0, health=raises, ready=hangs, metrics=lambda: metrics,
        status=lambda: queue_status(pool), check_timeout_s=0.2,
    )
    await server.start()
    async with client_for(server) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    await server.stop()

    assert health.status_code == 503
    assert health.json()["reasons"] == ["check failed: RuntimeError: boom"]
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["check failed: timed out after 0.2 s"]


# --- /metrics -------------------------------------------------------------------------------


async def test_metrics_reports_queue_depth_from_the_database(
    running: Running, db: asyncpg.Connection
) -> None:
    await insert_items(db, ["a", "b", "c"])
    await insert_items(db, ["d"], first_id=10)
    await db.execute("UPDATE embedding_queue SET status = 'failed' WHERE content_text = 'd'")
    running.metrics.wakeup("notify")

    response = await running.client.get("/metrics?name[]=ignored")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = metric_values(response.text)
    assert values[("embedworker_queue_items", frozenset({("status", "queued")}))] == 3
    assert values[("embedworker_queue_items", frozenset({("status", "failed")}))] == 1
    assert values[("embedworker_queue_items", frozenset({("status", "completed")}))] == 0
    assert values[("embedworker_queue_queued_items", frozenset({("state", "due")}))] == 3
    assert values[("embedworker_queue_stats_up", frozenset())] == 1
    assert values[("embedworker_wakeups_total", frozenset({("reason", "notify")}))] == 1


@pytest.mark.parametrize("status", [broken, never], ids=["refused", "hangs"])
async def test_metrics_are_served_while_the_database_is_down(
    status: Callable[[], Awaitable[QueueStatus]],
) -> None:
    running = await serve(status, metrics_refresh_timeout_s=0.2)
    running.metrics.batch_finished(size=2, completed=2, retrying=0, failed=0, seconds=0.1)
    try:
        response = await running.client.get("/metrics")
    finally:
        await running.client.aclose()
        await running.server.stop()

    assert response.status_code == 200
    values = metric_values(response.text)
    assert values[("embedworker_queue_stats_up", frozenset())] == 0
    assert values[("embedworker_items_completed_total", frozenset())] == 2


# --- /status --------------------------------------------------------------------------------


async def test_status(running: Running, db: asyncpg.Connection) -> None:
    await insert_items(db, ["one", "two"], content_type="post", priority=2)
    await insert_items(db, ["three"], content_type="comment", first_id=5)
    await db.execute("UPDATE embedding_queue SET status = 'failed', error_message = 'bad'"
                     " WHERE content_text = 'three'")

    response = await running.client.get("/status")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert body["byStatus"] == {"queued": 2, "processing": 0, "completed": 0, "failed": 1}
    assert body["byPriority"] == {"2": 2, "5": 1}
    assert body["byContentType"] == {"post": 2, "comment": 1}
    assert body["failedByError"] == [{"error": "bad", "count": 1}]
    assert body["due"] == 2
    assert len(body["recentItems"]) == 3
    assert body["recentItems"][0]["contentType"] == "comment"


async def test_status_when_the_database_is_down() -> None:
    running = await serve(broken)
    try:
        response = await running.client.get("/status")
    finally:
        await running.client.aclose()
        await running.server.stop()

    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "reasons": ["queue statistics unavailable: ConnectionRefusedError: database is down"],
    }


# --- the status page and its data ------------------------------------------------------------

SECRET_TEXT = "TOPSECRET content text of a private post"


async def test_the_status_page_is_self_contained_html(running: Running) -> None:
    response = await running.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    assert page.startswith("<!doctype html>")
    # Nothing is loaded from elsewhere: no URL with a scheme or protocol-relative, no linked
    # script, style sheet or image; the only absolute URL is the SVG namespace (not fetched).
    assert re.findall(r"(?:https?:)?//[\w.-]+", page) == ["http://www.w3.org"] * page.count(
        "http://www.w3.org/2000/svg"
    )
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link[^>]*stylesheet|@import|url\(",
                         page, re.IGNORECASE)
    # The inline style and script are exactly the ones the policy allows.
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    for tag in ("style", "script"):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        assert len(blocks) == 1
        digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy


async def test_overview_json_has_what_the_page_shows_and_no_content_text(
    running: Running, db: asyncpg.Connection
) -> None:
    await insert_items(db, [SECRET_TEXT + " one", SECRET_TEXT + " two", SECRET_TEXT + " three"])
    await db.execute(
        "UPDATE embedding_queue SET status = 'failed', error_message = 'HTTP 422: too long'"
        " WHERE content_id = 1"
    )
    await db.execute(
        "UPDATE embedding_queue SET waiting_for = ARRAY['bge_m3'] WHERE content_id = 2"
    )
    running.checks.models = {"e5_small": True, "bge_m3": False}
    running.checks.problems = {"bge_m3": "HTTP 401: denied (check the model's api_key)"}
    running.metrics.batch_finished(size=3, completed=2, retrying=0, failed=1, seconds=0.1)

    response = await running.client.get("/overview.json")

    assert response.status_code == 200
    assert SECRET_TEXT not in response.text
    body = response.json()
    assert body["ready"] == {"ok": True, "reasons": []}
    assert body["health"] == {"ok": True, "reasons": []}
    assert body["queue"]["byStatus"]["failed"] == 1
    assert body["queue"]["due"] == 1
    assert body["queue"]["waitingForModel"] == 1
    assert body["queue"]["failedByError"] == [{"error": "HTTP 422: too long", "count": 1}]
    assert body["queueError"] is None
    assert body["models"]["e5_small"]["up"] is True
    assert body["models"]["bge_m3"] == {
        "up": False, "problem": "HTTP 401: denied (check the model's api_key)",
        "version": None, "current": None, "outdated": None, "missing": None, "waiting": 1,
    }
    throughput = body["throughput"]
    assert throughput["bucketSeconds"] == 60
    assert len(throughput["completed"]) == len(throughput["failed"]) == 60
    assert (throughput["completed"][-1], throughput["failed"][-1]) == (2, 1)
    assert sum(throughput["completed"]) == 2


async def test_overview_json_while_the_database_is_down() -> None:
    checks = Checks(database=False)
    running = await serve(broken, checks)
    try:
        response = await running.client.get("/overview.json")
        page = await running.client.get("/")
    finally:
        await running.client.aclose()
        await running.server.stop()

    assert response.status_code == 200
    body = response.json()
    assert body["queue"] is None
    assert body["queueError"] == (
        "queue statistics unavailable: ConnectionRefusedError: database is down"
    )
    assert body["ready"] == {"ok": False, "reasons": ["database: unreachable"]}
    assert body["models"]["e5_small"] == {
        "up": True, "problem": None, "version": None, "current": None, "outdated": None,
        "missing": None, "waiting": None,
    }
    assert page.status_code == 200


# --- protocol -------------------------------------------------------------------------------


async def test_unknown_path_and_method(running: Running) -> None:
    missing = await running.client.get("/nope")
    assert missing.status_code == 404
    assert "error" in missing.json()

    posted = await running.client.post("/metrics", content=b'{"x": 1}')
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"

    deleted = await running.client.delete("/status")
    assert deleted.status_code == 405


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"garbage\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/2.0\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET healthz HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         b"HTTP/1.1 400 "),
        (b"POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"HTTP/1.1 400 "),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
         b"HTTP/1.1 431 "),
        (b"POST /healthz HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
         b"HTTP/1.1 413 "),
        (b"GET /healthz\xff\xfe HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 "),
        (b"GET /healthz HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 "),
        (b"GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n\r\n",
         b"HTTP/1.1 200 "),
    ],
)
async def test_malformed_requests_get_an_answer(
    bare: Running, request_bytes: bytes, status_line: bytes
) -> None:
    answer = await raw(bare.server, request_bytes)
    assert answer.startswith(status_line), answer[:80]
    assert b"\r\nConnection: close\r\n" in answer
    assert (await bare.client.get("/healthz")).status_code == 200


async def test_client_that_leaves_without_a_request(bare: Running) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", bare.server.port)
    writer.close()
    await writer.wait_closed()
    assert (await bare.client.get("/healthz")).status_code == 200


async def test_many_requests_at_once(running: Running) -> None:
    responses = await asyncio.gather(
        *(running.client.get(path) for path in ["/healthz", "/readyz", "/status", "/metrics"] * 5)
    )
    assert [r.status_code for r in responses] == [200] * 20


# --- start and stop -------------------------------------------------------------------------


async def test_stop_closes_idle_connections_and_the_port(pool: asyncpg.Pool) -> None:
    running = await serve(lambda: queue_status(pool))
    await running.client.aclose()
    port = running.server.port
    # A client that connects and never sends anything would hold its connection for
    # READ_TIMEOUT_S; stop() must not wait for it.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")

    async def accepted() -> bool:
        return running.server.open_connections == 1

    await wait_until(accepted)

    await asyncio.wait_for(running.server.stop(), timeout=3)

    assert await asyncio.wait_for(reader.read(), timeout=3) == b""
    writer.close()
    await writer.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await running.server.stop()  # a second stop is harmless
    with pytest.raises(RuntimeError):
        _ = running.server.port
