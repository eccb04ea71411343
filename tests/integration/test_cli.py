"""The real `python -m embedworker` command, run as a subprocess: exit codes, signals, outcomes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from pgvector.asyncpg import register_vector

from embedworker.exits import EXIT_UNAVAILABLE
from embedworker.standin import StandinServer
from tests.helpers import (
    close_to,
    expected_bge,
    expected_e5,
    insert_items,
    taken_port,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
EXIT_CONFIG = 78
START_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 20.0


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Starts `python -m embedworker` processes and makes sure none outlives the test."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []

    def start(self, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        n = len(self._procs)
        out, err = self._folder / f"cli{n}.out", self._folder / f"cli{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "embedworker", *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        self._procs.append((proc, out, err))
        return proc

    async def wait(self, proc: subprocess.Popen[bytes], timeout: float = EXIT_TIMEOUT_S) -> int:
        """The exit code; fails the test if the process is still running after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (code := proc.poll()) is None:
            if loop.time() > deadline:
                raise AssertionError(f"{proc.args} still running after {timeout} s")
            await asyncio.sleep(0.05)
        return code

    def output(self, proc: subprocess.Popen[bytes]) -> tuple[str, str]:
        for candidate, out, err in self._procs:
            if candidate is proc:
                return out.read_text(errors="replace"), err.read_text(errors="replace")
        raise KeyError(proc)

    async def run(self, *args: str, env: dict[str, str], timeout: float = 30.0) -> Finished:
        proc = self.start(*args, env=env)
        try:
            code = await self.wait(proc, timeout)
        finally:
            self.kill(proc)
        return Finished(code, *self.output(proc))

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def kill_all(self) -> None:
        for proc, _, _ in self._procs:
            self.kill(proc)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    try:
        yield runner
    finally:
        runner.kill_all()


def cli_env(**values: str) -> dict[str, str]:
    """The caller's environment without any embedworker setting, plus ``values``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("EMBEDWORKER_") and name != "DATABASE_URL"
    }
    env["EMBEDWORKER_LOG_LEVEL"] = "warning"
    env.update(values)
    return env


def worker_env(
    database_url: str, e5: StandinServer, bge: StandinServer, **values: str
) -> dict[str, str]:
    return cli_env(
        DATABASE_URL=database_url,
        EMBEDWORKER_MODELS__E5_SMALL__URL=e5.url,
        EMBEDWORKER_MODELS__BGE_M3__URL=bge.url,
        EMBEDWORKER_MODELS__E5_SMALL__TIMEOUT_S="10",
        EMBEDWORKER_MODELS__BGE_M3__TIMEOUT_S="10",
        EMBEDWORKER_RETRY_DELAY_S="0",
        EMBEDWORKER_RETRY_DELAY_MAX_S="0",
        **values,
    )


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await register_vector(connection)
    try:
        yield connection
    finally:
        await connection.close()


async def count(conn: asyncpg.Connection, where: str) -> int:
    n: int = await conn.fetchval(f"SELECT count(*) FROM embedding_queue WHERE {where}")
    return n


async def assert_embedded(conn: asyncpg.Connection, texts: dict[int, str]) -> None:
    """Each content_id is completed in the queue and has both vectors of its text."""
    rows = await conn.fetch(
        "SELECT e.content_id, e.embedding_e5_small, e.embedding_bge_m3, e.has_e5_embedding,"
        " e.has_bge_embedding, e.status, q.status AS queue_status"
        " FROM embeddings e JOIN embedding_queue q USING (content_type, content_id)"
        " WHERE e.content_id = ANY($1::bigint[])",
        list(texts),
    )
    assert {row["content_id"] for row in rows} == set(texts)
    for row in rows:
        text = texts[row["content_id"]]
        assert row["queue_status"] == "completed"
        assert row["status"] == "completed"
        assert row["has_e5_embedding"]
        assert row["has_bge_embedding"]
        assert close_to(row["embedding_e5_small"], expected_e5(text))
        assert close_to(row["embedding_bge_m3"], expected_bge(text))


# -- one-shot commands -------------------------------------------------------------------------


async def test_migrate_twice_exits_zero(cli: Cli, empty_database_url: str) -> None:
    env = cli_env(DATABASE_URL=empty_database_url)
    first = await cli.run("migrate", env=env)
    assert first.returncode == 0, first.stderr
    second = await cli.run("migrate", env=env)
    assert second.returncode == 0, second.stderr
    check = await asyncpg.connect(empty_database_url)
    try:
        assert await check.fetchval("SELECT count(*) FROM embedworker_migrations") >= 3
        assert await check.fetchval("SELECT to_regclass('embedding_queue') IS NOT NULL")
    finally:
        await check.close()


async def test_invalid_value_exits_78(cli: Cli, database_url: str) -> None:
    env = cli_env(DATABASE_URL=database_url, EMBEDWORKER_CONCURRENCY="0")
    result = await cli.run("migrate", env=env)
    assert result.returncode == EXIT_CONFIG
    assert "concurrency" in result.stderr


async def test_unknown_key_in_config_file_exits_78(
    cli: Cli, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "embedworker.toml"
    config.write_text('concurrency = 2\nbogus_setting = "x"\n', encoding="utf-8")
    result = await cli.run(
        "--config", str(config), "migrate", env=cli_env(DATABASE_URL=database_url)
    )
    assert result.returncode == EXIT_CONFIG
    assert "bogus_setting" in result.stderr


async def test_missing_database_url_exits_78(cli: Cli) -> None:
    result = await cli.run("migrate", env=cli_env())
    assert result.returncode == EXIT_CONFIG
    assert "database_url" in result.stderr


async def test_missing_config_file_exits_78(cli: Cli, database_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = await cli.run(
        "--config", str(missing), "migrate", env=cli_env(DATABASE_URL=database_url)
    )
    assert result.returncode == EXIT_CONFIG
    assert str(missing) in result.stderr


@pytest.mark.parametrize("command", ["migrate", "run"])
async def test_malformed_database_url_exits_78(
    cli: Cli, command: str, e5_server: StandinServer, bge_server: StandinServer
) -> None:
    env = worker_env("not-a-postgres-url", e5_server, bge_server)
    result = await cli.run(command, env=env, timeout=10)
    assert result.returncode == EXIT_CONFIG
    assert "database_url" in result.stderr


async def test_run_on_unmigrated_database_exits_1(
    cli: Cli, empty_database_url: str, e5_server: StandinServer, bge_server: StandinServer
) -> None:
    env = worker_env(empty_database_url, e5_server, bge_server)
    result = await cli.run("run", env=env)
    assert result.returncode == 1
    assert "embedworker migrate" in result.stderr
    check = await asyncpg.connect(empty_database_url)
    try:
        assert await check.fetchval("SELECT to_regclass('embedding_queue') IS NULL")
    finally:
        await check.close()


async def test_run_with_another_channel_than_migrated_exits_1(
    cli: Cli, database_url: str, e5_server: StandinServer, bge_server: StandinServer
) -> None:
    env = worker_env(database_url, e5_server, bge_server, EMBEDWORKER_CHANNEL="other_channel")
    result = await cli.run("run", env=env)
    assert result.returncode == 1
    assert "embedworker migrate" in result.stderr


async def test_run_refuses_an_http_listen_address_in_use_before_claiming(
    cli: Cli, conn: asyncpg.Connection, database_url: str, e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    await insert_items(conn, ["waits for a daemon that can serve its endpoint"])
    with taken_port() as port:
        address = f"127.0.0.1:{port}"
        result = await cli.run("run", env=worker_env(database_url, e5_server, bge_server,
                                                     EMBEDWORKER_HTTP_LISTEN=address))
    assert result.returncode == EXIT_UNAVAILABLE
    assert f"cannot listen on http_listen {address}: Address already in use" in result.stderr
    assert "database" not in result.stderr
    assert await count(conn, "status = 'queued' AND processing_started_at IS NULL") == 1


async def test_enqueue_queues_the_row(
    cli: Cli, conn: asyncpg.Connection, database_url: str
) -> None:
    result = await cli.run(
        "enqueue", "post", "7", "some   text ", env=cli_env(DATABASE_URL=database_url)
    )
    assert result.returncode == 0, result.stderr
    row = await conn.fetchrow(
        "SELECT content_text, priority, status, retry_count FROM embedding_queue"
        " WHERE content_type = 'post' AND content_id = 7"
    )
    assert row is not None
    assert dict(row) == {
        "content_text": "some text",
        "priority": 5,
        "status": "queued",
        "retry_count": 0,
    }


async def test_drain_embeds_everything_and_exits_zero(
    cli: Cli,
    conn: asyncpg.Connection,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    texts = {n: f"lesson {n}: mitochondria are the powerhouse of the cell" for n in range(1, 41)}
    await insert_items(conn, list(texts.values()), first_id=1)
    env = worker_env(database_url, e5_server, bge_server)
    enqueued = await cli.run("enqueue", "post", "100", "some text", env=env)
    assert enqueued.returncode == 0, enqueued.stderr
    texts[100] = "some text"

    result = await cli.run("drain", env=env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert await count(conn, "status <> 'completed'") == 0
    await assert_embedded(conn, texts)


# -- the daemon ----------------------------------------------------------------------------------


async def sigterm_while_in_flight(
    cli: Cli,
    conn: asyncpg.Connection,
    env: dict[str, str],
    e5_server: StandinServer,
) -> None:
    """Start `run`, wait for a batch to be in flight, SIGTERM, and expect exit code 0."""
    e5_server.faults.latency_s = 2.0
    await insert_items(conn, ["first text", "second text", "third text"])
    proc = cli.start("run", env=env)
    try:
        await wait_until(
            lambda: _exists(conn, "status = 'processing'"), timeout=START_TIMEOUT_S
        )
        # ... and the batch has reached the model server, so the claim has returned to the
        # daemon (see test_sigterm_during_a_claim_leaves_no_row_processing for the race).
        await wait_until(_requested(e5_server), timeout=START_TIMEOUT_S)
        proc.send_signal(signal.SIGTERM)
        code = await cli.wait(proc)
    finally:
        cli.kill(proc)
    assert code == 0, cli.output(proc)[1]
    assert await count(conn, "status = 'processing'") == 0


async def _exists(conn: asyncpg.Connection, where: str) -> bool:
    return await count(conn, where) > 0


def _requested(server: StandinServer) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return server.requests > 0

    return check


async def test_sigterm_finishes_or_releases_the_batch_in_flight(
    cli: Cli,
    conn: asyncpg.Connection,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    env = worker_env(database_url, e5_server, bge_server, EMBEDWORKER_SHUTDOWN_GRACE_S="10")
    await sigterm_while_in_flight(cli, conn, env, e5_server)

    rows = await conn.fetch(
        "SELECT content_id, content_text, status, retry_count, lease_token FROM embedding_queue"
    )
    assert len(rows) == 3
    for row in rows:
        assert row["status"] in ("completed", "queued"), dict(row)
        assert row["retry_count"] == 0
        assert row["lease_token"] is None
    done = {row["content_id"]: row["content_text"] for row in rows if row["status"] == "completed"}
    await assert_embedded(conn, done)


async def test_sigterm_without_grace_releases_the_batch(
    cli: Cli,
    conn: asyncpg.Connection,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    env = worker_env(database_url, e5_server, bge_server, EMBEDWORKER_SHUTDOWN_GRACE_S="0")
    await sigterm_while_in_flight(cli, conn, env, e5_server)

    rows = await conn.fetch(
        "SELECT status, retry_count, lease_token, error_message FROM embedding_queue"
    )
    assert [dict(row) for row in rows] == [
        {"status": "queued", "retry_count": 0, "lease_token": None, "error_message": None}
    ] * 3
    assert await conn.fetchval("SELECT count(*) FROM embeddings") == 0


# Makes the claim slow on the server (only the UPDATE that claims content_id 1 sleeps) and lets it
# commit even when the client cancels it: what happens when a claim's result is on its way back
# while the daemon is told to stop.
SLOW_CLAIM = r"""
CREATE FUNCTION test_slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM pg_sleep(3);
    EXCEPTION WHEN query_canceled THEN
        NULL;  -- the cancel came too late: the claim commits anyway
    END;
    RETURN NEW;
END
$$;
CREATE TRIGGER test_slow_claim BEFORE UPDATE ON embedding_queue FOR EACH ROW
    WHEN (OLD.status = 'queued' AND NEW.status = 'processing' AND OLD.content_id = 1)
    EXECUTE FUNCTION test_slow_claim();
"""


async def test_sigterm_during_a_claim_leaves_no_row_processing(
    cli: Cli,
    conn: asyncpg.Connection,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    await conn.execute(SLOW_CLAIM)
    await insert_items(conn, ["first text", "second text", "third text"])
    env = worker_env(database_url, e5_server, bge_server, EMBEDWORKER_SHUTDOWN_GRACE_S="0")
    proc = cli.start("run", env=env)
    try:
        await wait_until(lambda: _backend(conn, "wait_event = 'PgSleep'"), timeout=START_TIMEOUT_S)
        proc.send_signal(signal.SIGTERM)
        code = await cli.wait(proc)
    finally:
        cli.kill(proc)
    assert code == 0, cli.output(proc)[1]
    # Whatever the daemon left running on the server has ended.
    await wait_until(lambda: _no_backend(conn, "state = 'active'"), timeout=10)
    rows = await conn.fetch("SELECT status, retry_count, lease_token FROM embedding_queue")
    assert [dict(row) for row in rows] == [
        {"status": "queued", "retry_count": 0, "lease_token": None}
    ] * 3


async def _backend(conn: asyncpg.Connection, where: str) -> bool:
    """Whether another session of this test's database matches ``where`` (pg_stat_activity)."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
        f" AND pid <> pg_backend_pid() AND {where})"
    )
    return found


async def _no_backend(conn: asyncpg.Connection, where: str) -> bool:
    return not await _backend(conn, where)


async def test_run_catches_up_then_follows_notifications(
    cli: Cli,
    conn: asyncpg.Connection,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    backlog = {1: "queued before the daemon started", 2: "also waiting for the daemon"}
    await insert_items(conn, list(backlog.values()), first_id=1)
    # poll_interval_s stays at 300 s: once the listener is up only a NOTIFY wakes the workers.
    env = worker_env(database_url, e5_server, bge_server, EMBEDWORKER_POLL_INTERVAL_S="300")
    proc = cli.start("run", env=env)
    try:
        await wait_until(
            lambda: _all_completed(conn, len(backlog)), timeout=START_TIMEOUT_S
        )
        await assert_embedded(conn, backlog)
        # The listener is up once its connection has run LISTEN (or, later, its probe).
        await wait_until(lambda: _listening(conn), timeout=START_TIMEOUT_S)

        await conn.execute(
            "INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,"
            " priority, status) VALUES ('post', 3, 'inserted while running', md5('x'), 5,"
            " 'queued')"
        )
        await wait_until(lambda: _all_completed(conn, 3), timeout=15)
        await assert_embedded(conn, {**backlog, 3: "inserted while running"})

        proc.send_signal(signal.SIGTERM)
        code = await cli.wait(proc)
    finally:
        cli.kill(proc)
    assert code == 0, cli.output(proc)[1]


async def _all_completed(conn: asyncpg.Connection, n: int) -> bool:
    return await count(conn, "status = 'completed'") == n


async def _listening(conn: asyncpg.Connection) -> bool:
    return await _backend(
        conn, "(query ILIKE 'LISTEN %embedding_queue%' OR query ILIKE 'SELECT pg_notify(%')"
    )
