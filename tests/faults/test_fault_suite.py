"""The fault suite: the daemon as a subprocess, against real Postgres and fault-injecting model
servers. Every test asserts end states, never log lines.

Invariants after every run: each item is 'completed' with the vectors of its latest text, or
'failed' with a reason (only poison items fail); no row stays 'processing'; one embeddings row
per item.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pgvector.asyncpg import register_vector

from embedworker.standin import StandinServer
from tests.faults.conftest import Postgres, WorkerProcess, worker_env
from tests.helpers import close_to, expected_bge, expected_e5

pytestmark = pytest.mark.timeout(300)

POISON = "POISON"


async def with_db(url: str, action: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """Run ``action`` on a fresh connection, retrying while the server restarts."""
    for attempt in range(100):
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await asyncio.sleep(0.1 * min(attempt + 1, 10))
            continue
        try:
            await register_vector(conn)
            return await action(conn)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError):
            await asyncio.sleep(0.1 * min(attempt + 1, 10))
        finally:
            await conn.close()
    raise AssertionError("database unreachable")


async def queue_texts(url: str, texts: dict[int, str]) -> None:
    async def go(conn: asyncpg.Connection) -> None:
        await conn.executemany(
            "SELECT queue_for_embedding('post', $1, $2)", list(texts.items())
        )

    await with_db(url, go)


async def settled(url: str) -> bool:
    """Nothing queued or processing is left."""

    async def go(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval(
            "SELECT count(*) = 0 FROM embedding_queue WHERE status IN ('queued', 'processing')"
        ))

    return bool(await with_db(url, go))


async def wait_settled(url: str, workers: list[WorkerProcess], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await settled(url):
        if loop.time() > deadline:
            logs = "\n---\n".join(worker.tail() for worker in workers)
            raise AssertionError(f"queue did not settle within {timeout} s\n{logs}")
        await asyncio.sleep(0.2)


async def check_invariants(url: str, latest: dict[int, str]) -> None:
    """Every item completed with its latest text's vectors, or failed for being poison."""

    async def go(conn: asyncpg.Connection) -> None:
        queue = {r["content_id"]: r for r in await conn.fetch("SELECT * FROM embedding_queue")}
        rows = await conn.fetch("SELECT * FROM embeddings")
        embeddings = {r["content_id"]: r for r in rows}
        assert len(rows) == len(embeddings), "more than one embeddings row for an item"
        assert set(queue) == set(latest)
        for content_id, text in latest.items():
            item = queue[content_id]
            assert item["content_text"] == text
            if POISON in text:
                assert item["status"] == "failed", (content_id, item["status"])
                assert "input rejected" in item["error_message"]
                continue
            assert item["status"] == "completed", (content_id, item["status"],
                                                   item["error_message"])
            row = embeddings[content_id]
            assert row["content_text"] == text, content_id
            assert row["status"] == "completed"
            assert row["has_e5_embedding"]
            assert row["has_bge_embedding"]
            assert close_to(row["embedding_e5_small"], expected_e5(text)), content_id
            assert close_to(row["embedding_bge_m3"], expected_bge(text)), content_id

    await with_db(url, go)


@pytest.fixture
def servers() -> Iterator[tuple[StandinServer, StandinServer]]:
    with StandinServer("e5_small", 384, max_batch=64) as e5, \
            StandinServer("bge_m3", 1024, max_batch=32) as bge:
        yield e5, bge


@pytest.fixture
def spawn(
    fault_db_url: str, servers: tuple[StandinServer, StandinServer], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts worker subprocesses; kills any still running when the test ends."""
    e5, bge = servers
    started: list[WorkerProcess] = []

    def start(**settings: Any) -> WorkerProcess:
        values = {
            "log_level": "info",
            "lease_timeout_s": 2,
            "retry_delay_s": 0.2,
            "retry_delay_max_s": 1,
            "shutdown_grace_s": 10,
            **settings,
        }
        env = worker_env(fault_db_url, {"e5_small": e5.url, "bge_m3": bge.url}, **values)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.cleanup()


async def test_chaos_run_ends_with_every_item_accounted_for(
    fault_pg: Postgres,
    fault_db_url: str,
    servers: tuple[StandinServer, StandinServer],
    spawn: Callable[..., WorkerProcess],
) -> None:
    """Two workers; five kill -9; a Postgres restart; a model outage; 20% errors and slow
    answers; poison items inside batches; texts updated while in flight."""
    e5, bge = servers
    rng = random.Random(20261129)
    e5.faults.error_rate = 0.2
    e5.faults.latency_s = 0.2
    bge.faults.error_rate = 0.2
    e5.faults.poison_marker = POISON
    latest = {n: f"item {n}: a text about topic {n % 17}" for n in range(1, 601)}
    for n in rng.sample(sorted(latest), 6):
        latest[n] = f"item {n}: a {POISON} text"
    await queue_texts(fault_db_url, latest)

    settings = {"concurrency": 2, "batch_size": 8}
    workers = [spawn(**settings), spawn(**settings)]

    async def kill_and_restart() -> None:
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            workers[victim] = spawn(**settings)

    async def restart_postgres() -> None:
        await asyncio.sleep(2.5)
        await asyncio.to_thread(fault_pg.restart)

    async def model_outage() -> None:
        await asyncio.sleep(4.0)
        bge.down()
        await asyncio.sleep(3.0)
        bge.up()

    async def update_texts() -> None:
        for version in range(2, 8):
            await asyncio.sleep(0.7)
            changed = {
                n: f"item {n}: version {version} of the text"
                for n in rng.sample(sorted(latest), 25)
                if POISON not in latest[n]
            }
            latest.update(changed)
            await queue_texts(fault_db_url, changed)

    await asyncio.gather(kill_and_restart(), restart_postgres(), model_outage(), update_texts())
    e5.faults.error_rate = bge.faults.error_rate = 0.0
    await wait_settled(fault_db_url, workers, timeout=180)

    assert [worker.terminate() for worker in workers] == [0, 0]
    await check_invariants(fault_db_url, latest)


async def test_slow_model_never_lets_a_second_worker_take_the_same_rows(
    fault_db_url: str,
    servers: tuple[StandinServer, StandinServer],
    spawn: Callable[..., WorkerProcess],
) -> None:
    e5, _ = servers
    e5.faults.latency_s = 2.5  # longer than two lease timeouts of 1 s
    latest = {n: f"slow text {n}" for n in range(1, 33)}
    await queue_texts(fault_db_url, latest)

    workers = [spawn(lease_timeout_s=1, batch_size=8, concurrency=2) for _ in range(2)]
    await wait_settled(fault_db_url, workers, timeout=60)

    assert [worker.terminate() for worker in workers] == [0, 0]
    await check_invariants(fault_db_url, latest)
    assert sorted(e5.texts) == sorted(latest.values()), "a text was embedded twice"
    reclaims = await with_db(
        fault_db_url, lambda conn: conn.fetchval("SELECT sum(reclaim_count) FROM embedding_queue")
    )
    assert reclaims == 0


async def test_a_model_down_for_long_parks_its_work_across_kills_and_new_copies(
    fault_db_url: str,
    servers: tuple[StandinServer, StandinServer],
    spawn: Callable[..., WorkerProcess],
) -> None:
    """bge is down far longer than the lease: e5 vectors keep coming, bge's work is parked and
    spends nothing; the copy that parked it is killed and a new copy starts, and neither spins
    on the parked rows; when bge answers, every item is completed with each text sent to each
    model once."""
    e5, bge = servers
    bge.faults.healthy = False  # up, but answering 503 to everything, health checks included
    latest = {n: f"written while bge sleeps {n}" for n in range(1, 151)}
    await queue_texts(fault_db_url, latest)
    workers = [spawn(lease_timeout_s=1, batch_size=16, concurrency=2) for _ in range(2)]

    await wait_parked(fault_db_url, 150, workers)
    sent = (e5.requests, bge.requests)
    probes = bge.gets
    workers[0].kill()
    workers[0] = spawn(lease_timeout_s=1, batch_size=16, concurrency=2)
    await wait_for_count(lambda: bge.gets, probes + 6, workers)  # several seconds of probing
    assert (e5.requests, bge.requests) == sent, "parked rows were claimed and sent again"

    more = {n: f"written later while bge sleeps {n}" for n in range(151, 161)}
    latest.update(more)
    await queue_texts(fault_db_url, more)
    await wait_parked(fault_db_url, 160, workers)
    bge.faults.healthy = True
    await wait_settled(fault_db_url, workers, timeout=60)

    assert [worker.terminate() for worker in workers] == [0, 0]
    await check_invariants(fault_db_url, latest)
    assert sorted(e5.texts) == sorted(latest.values())
    assert sorted(bge.texts) == sorted(latest.values())
    spent = await with_db(fault_db_url, lambda conn: conn.fetchrow(
        "SELECT max(retry_count) AS retries, max(reclaim_count) AS reclaims FROM embedding_queue"
    ))
    assert (spent["retries"], spent["reclaims"]) == (0, 0)


async def wait_parked(url: str, count: int, workers: list[WorkerProcess]) -> None:
    async def parked() -> int:
        return int(await with_db(url, lambda conn: conn.fetchval(
            "SELECT count(*) FROM embedding_queue WHERE status = 'queued'"
            " AND waiting_for = ARRAY['bge_m3']"
        )))

    await wait_for_count(parked, count, workers)


async def wait_for_count(
    value: Callable[[], Awaitable[int] | int], target: int, workers: list[WorkerProcess],
    timeout: float = 60,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        current = value()
        if not isinstance(current, int):
            current = await current
        if current >= target:
            return
        if loop.time() > deadline:
            logs = "\n---\n".join(worker.tail() for worker in workers)
            raise AssertionError(f"{current} < {target} after {timeout} s\n{logs}")
        await asyncio.sleep(0.1)


async def test_malformed_responses_are_never_written(
    fault_db_url: str,
    servers: tuple[StandinServer, StandinServer],
    spawn: Callable[..., WorkerProcess],
) -> None:
    e5, bge = servers
    latest = {n: f"text {n} for a model that misbehaves" for n in range(1, 201)}
    await queue_texts(fault_db_url, latest)
    worker = spawn(batch_size=16, concurrency=2, max_retries=10)

    async def answers(server: StandinServer, count: int) -> None:
        target = server.requests + count
        while server.requests < target:
            await asyncio.sleep(0.01)

    for defect in ("wrong_dim", "nan", "wrong_count", "not_json"):
        e5.faults.malform = defect
        bge.faults.malform = defect
        await asyncio.wait_for(answers(e5, 4), 30)
    e5.faults.malform = bge.faults.malform = None
    await wait_settled(fault_db_url, [worker], timeout=60)

    assert worker.terminate() == 0
    await check_invariants(fault_db_url, latest)
    retried = await with_db(
        fault_db_url,
        lambda conn: conn.fetchval("SELECT count(*) FROM embedding_queue WHERE retry_count > 0"),
    )
    assert retried > 0, "the defects never reached the worker"


async def test_lost_listen_connection_is_replaced(
    fault_db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    worker = spawn(poll_interval_s=300)
    await queue_texts(fault_db_url, {1: "before"})
    await wait_settled(fault_db_url, [worker], timeout=30)

    killed = await with_db(fault_db_url, lambda conn: conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
    ))
    assert killed == 1
    await queue_texts(fault_db_url, {2: "after the listener was killed"})
    await wait_settled(fault_db_url, [worker], timeout=30)

    assert worker.terminate() == 0
    await check_invariants(fault_db_url, {1: "before", 2: "after the listener was killed"})


async def test_database_down_at_start_is_waited_for(
    fault_pg: Postgres, fault_db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    await queue_texts(fault_db_url, {1: "queued before the outage"})
    await asyncio.to_thread(fault_pg.stop)
    try:
        worker = spawn()
        await asyncio.sleep(3)  # the length of the outage, not a wait for an outcome
        assert worker.alive(), worker.tail()
    finally:
        await asyncio.to_thread(fault_pg.start)
    await queue_texts(fault_db_url, {2: "queued after the database came back"})
    await wait_settled(fault_db_url, [worker], timeout=60)

    assert worker.alive()
    assert worker.terminate() == 0
    await check_invariants(
        fault_db_url, {1: "queued before the outage", 2: "queued after the database came back"}
    )


async def _processing(url: str) -> int:
    return int(await with_db(url, lambda conn: conn.fetchval(
        "SELECT count(*) FROM embedding_queue WHERE status = 'processing'"
    )))


async def _wait_processing(url: str, worker: WorkerProcess) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await _processing(url) == 0:
        assert loop.time() < deadline, worker.tail()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("second_signal", [False, True])
async def test_shutdown_releases_claims_after_the_grace_period(
    fault_db_url: str,
    servers: tuple[StandinServer, StandinServer],
    spawn: Callable[..., WorkerProcess],
    second_signal: bool,
) -> None:
    e5, _ = servers
    e5.faults.latency_s = 20
    await queue_texts(fault_db_url, {n: f"in flight at shutdown {n}" for n in range(1, 9)})
    worker = spawn(shutdown_grace_s=60 if second_signal else 1)
    await _wait_processing(fault_db_url, worker)

    assert worker.process is not None
    worker.process.terminate()
    if second_signal:
        # Two signals sent back to back may merge into one pending signal; a person pressing
        # Ctrl-C twice is this far apart.
        await asyncio.sleep(0.5)
        worker.process.terminate()
    assert await asyncio.to_thread(worker.process.wait, 15) == 0

    rows = await with_db(fault_db_url, lambda conn: conn.fetch(
        "SELECT status, retry_count FROM embedding_queue"
    ))
    assert {(row["status"], row["retry_count"]) for row in rows} == {("queued", 0)}
