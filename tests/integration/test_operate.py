"""Operating the daemon: SIGHUP reload, sd_notify, journald priorities, `embedworker check`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import asyncpg
import pytest

from embedworker.service import Service
from embedworker.standin import StandinServer
from tests.helpers import insert_items, statuses, wait_until

REPO = Path(__file__).resolve().parents[2]


def write_config(
    path: Path, database_url: str, e5_url: str, bge_url: str, **settings: object
) -> None:
    values: dict[str, object] = {
        "database_url": database_url, "poll_interval_s": 300, "retry_delay_s": 0,
        "retry_delay_max_s": 0, "lease_timeout_s": 5, "shutdown_grace_s": 5,
        "log_level": "warning", **settings,
    }
    lines = [f"{key} = {value!r}".replace("'", '"') for key, value in values.items()]
    lines += [f'[models.e5_small]\nurl = "{e5_url}"', f'[models.bge_m3]\nurl = "{bge_url}"']
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def config_file(
    tmp_path: Path, database_url: str, e5_server: StandinServer, bge_server: StandinServer
) -> Path:
    path = tmp_path / "embedworker.toml"
    write_config(path, database_url, e5_server.url, bge_server.url, concurrency=2)
    return path


async def start_service(config_file: Path) -> tuple[Service, asyncio.Task[int]]:
    from embedworker.config import load_settings

    service = Service(load_settings(config_file), config_path=config_file)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.ready.wait(), 20)
    return service, task


async def stop_service(service: Service, task: asyncio.Task[int]) -> None:
    service.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


async def test_sighup_applies_a_valid_config_without_dropping_work(
    db: asyncpg.Connection,
    config_file: Path,
    database_url: str,
    e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    e5_server.faults.latency_s = 1.0
    await insert_items(db, [f"in flight during the reload {n}" for n in range(4)])
    service, task = await start_service(config_file)
    await wait_until(lambda: _count(db, "processing", 4))

    with StandinServer("e5_small", 384) as new_e5:
        write_config(config_file, database_url, new_e5.url, bge_server.url,
                     concurrency=3, batch_size=7, poll_interval_s=60)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: _reloaded(service))
        assert service.settings.concurrency == 3
        assert service.settings.batch_size == 7
        assert service.settings.poll_interval_s == 60
        await wait_until(lambda: _count(db, "completed", 4), timeout=20)

        await insert_items(db, ["after the reload"], first_id=100)
        await wait_until(lambda: _count(db, "completed", 5), timeout=20)
        assert new_e5.texts == ["after the reload"]
        await stop_service(service, task)
    assert await db.fetchval("SELECT max(retry_count) FROM embedding_queue") == 0


async def test_sighup_keeps_the_running_config_when_the_new_one_is_invalid(
    db: asyncpg.Connection, config_file: Path
) -> None:
    service, task = await start_service(config_file)
    before = service.settings
    config_file.write_text(config_file.read_text().replace("concurrency = 2", "concurrency = 0"))

    assert await service.reload() is False
    os.kill(os.getpid(), signal.SIGHUP)  # the signal path too: it must not end the process
    await insert_items(db, ["still working"])
    await wait_until(lambda: _count(db, "completed", 1), timeout=20)

    assert service.settings is before
    assert not task.done()
    await stop_service(service, task)


async def test_reload_rejects_a_model_whose_column_does_not_exist(
    db: asyncpg.Connection, config_file: Path, e5_server: StandinServer
) -> None:
    service, task = await start_service(config_file)
    config_file.write_text(
        config_file.read_text()
        + f'[models.third]\nurl = "{e5_server.url}"\ndimension = 384\n'
        'column = "embedding_third"\nflag_column = "has_third_embedding"\n'
    )

    assert await service.reload() is False
    assert "third" not in service.settings.models
    await stop_service(service, task)


async def _count(db: asyncpg.Connection, status: str, expected: int) -> bool:
    return (await statuses(db)).get(status, 0) == expected


async def _reloaded(service: Service) -> bool:
    return service.reloads >= 1


# -- the daemon as a subprocess: sd_notify and journald ---------------------------------------


def daemon_env(config_file: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EMBEDWORKER_") and k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(REPO), EMBEDWORKER_CONFIG=str(config_file), **extra)
    return env


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Datagrams until one contains the line ``wanted`` (each datagram split into lines)."""
    seen: list[str] = []
    while wanted not in seen:
        seen.extend(sock.recv(4096).decode().splitlines())
    return seen


def test_sd_notify_ready_watchdog_reload_stopping(
    config_file: Path, notify_socket: socket.socket, tmp_path: Path
) -> None:
    env = daemon_env(
        config_file,
        NOTIFY_SOCKET=notify_socket.getsockname(),
        WATCHDOG_USEC="400000",
    )
    with (tmp_path / "out.log").open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "embedworker", "run"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        assert "READY=1" in receive_until(notify_socket, "READY=1")
        receive_until(notify_socket, "WATCHDOG=1")
        receive_until(notify_socket, "WATCHDOG=1")
        process.send_signal(signal.SIGHUP)
        after_hup = receive_until(notify_socket, "RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in after_hup)
        receive_until(notify_socket, "READY=1")
        process.send_signal(signal.SIGTERM)
        receive_until(notify_socket, "STOPPING=1")
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_journald_lines_start_with_their_syslog_priority(
    config_file: Path, tmp_path: Path
) -> None:
    out_path = tmp_path / "journal.log"
    with out_path.open("wb") as out:
        stat = os.fstat(out.fileno())
        env = daemon_env(config_file, JOURNAL_STREAM=f"{stat.st_dev}:{stat.st_ino}",
                         EMBEDWORKER_CONCURRENCY="0")
        result = subprocess.run([sys.executable, "-m", "embedworker", "drain"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert result.returncode == 78  # invalid configuration is not logged through structlog
    env = daemon_env(config_file, EMBEDWORKER_LOG_LEVEL="info")
    with out_path.open("wb") as out:
        stat = os.fstat(out.fileno())
        env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        result = subprocess.run([sys.executable, "-m", "embedworker", "drain"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert result.returncode == 0
    lines = out_path.read_text().splitlines()
    assert lines
    assert all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines), lines
    assert any(line.startswith("<6>") for line in lines)


# -- embedworker check ------------------------------------------------------------------------


def run_check(config_file: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "embedworker", "check"],
                          env=daemon_env(config_file, **extra), capture_output=True, text=True,
                          timeout=60)


def test_check_passes_when_everything_works(config_file: Path) -> None:
    result = run_check(config_file)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 8
    assert all(line.startswith("ok") for line in lines)


def test_check_fails_when_a_model_is_down(config_file: Path, bge_server: StandinServer) -> None:
    bge_server.down()
    result = run_check(config_file)
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failing
    assert all("bge_m3" in line for line in failing)


def test_check_fails_on_a_wrong_dimension(config_file: Path) -> None:
    result = run_check(config_file, EMBEDWORKER_MODELS__E5_SMALL__DIMENSION="512")
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any("embedding_e5_small is vector(384)" in line for line in failing)
    assert any("e5_small embedding" in line for line in failing)


def test_check_fails_on_an_unmigrated_database(
    tmp_path: Path, fresh_database: Callable[[str | None], str], e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    path = tmp_path / "empty.toml"
    write_config(path, fresh_database(None), e5_server.url, bge_server.url)
    result = run_check(path)
    assert result.returncode == 1
    assert any(line.startswith("FAIL  migrations") for line in result.stdout.splitlines())


# -- embedworker maintenance ------------------------------------------------------------------


async def test_maintenance_commands_change_exactly_what_they_should(
    db: asyncpg.Connection, config_file: Path
) -> None:
    await insert_items(db, [f"row {n}" for n in range(6)])
    await db.execute("""
        UPDATE embedding_queue SET status = CASE content_id
            WHEN 1 THEN 'completed' WHEN 2 THEN 'completed' WHEN 3 THEN 'failed'
            WHEN 4 THEN 'processing' ELSE 'queued' END,
          updated_at = CASE WHEN content_id IN (1, 3) THEN now() - interval '60 days'
                            ELSE now() END
    """)

    def maintenance(job: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "embedworker", "maintenance", job],
            env=daemon_env(config_file), capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert await asyncio.to_thread(maintenance, "cleanup") == \
        "cleanup: completed_deleted 1, failed_deleted 1"
    assert sorted(await db.fetchval("SELECT array_agg(content_id) FROM embedding_queue")) == \
        [2, 4, 5, 6]
    await db.execute("UPDATE embedding_queue SET status = 'failed' WHERE content_id = 5")
    assert await asyncio.to_thread(maintenance, "retry-failed") == "retry-failed: requeued 1"
    assert await asyncio.to_thread(maintenance, "reset-stuck") == "reset-stuck: requeued 1"
    assert await statuses(db) == {"completed": 1, "queued": 3}


# -- the observability endpoint of the running daemon -----------------------------------------


async def test_http_endpoint_of_the_running_daemon(
    db: asyncpg.Connection, tmp_path: Path, database_url: str, e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    import httpx

    path = tmp_path / "http.toml"
    write_config(path, database_url, e5_server.url, bge_server.url, http_listen="127.0.0.1:0")
    service, task = await start_service(path)
    await insert_items(db, [f"observed {n}" for n in range(5)])
    await wait_until(lambda: _count(db, "completed", 5))
    assert service.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        status = (await client.get("/status")).json()
        assert status["byStatus"]["completed"] == 5
        samples = metric_samples((await client.get("/metrics")).text)
        assert samples[("embedworker_items_completed_total", ())] == 5
        assert samples[("embedworker_queue_items", (("status", "completed"),))] == 5

        bge_server.down()
        await insert_items(db, ["while bge is down"], first_id=50)

        async def bge_marked_down() -> bool:
            text = (await client.get("/metrics")).text
            return metric_samples(text)[("embedworker_model_up", (("model", "bge_m3"),))] == 0

        await wait_until(bge_marked_down)
        # e5 still answers: at least one model is reachable, so the daemon stays ready
        assert (await client.get("/readyz")).status_code == 200
    await stop_service(service, task)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_status_command_reports_the_queue(config_file: Path, database_url: str) -> None:
    import json

    async def seed() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await insert_items(conn, ["a", "b", "c"], priority=2)
            await conn.execute("UPDATE embedding_queue SET status = 'failed',"
                               " error_message = 'HTTP 422: no' WHERE content_id = 3")
        finally:
            await conn.close()

    asyncio.run(seed())
    env = daemon_env(config_file)
    as_json = subprocess.run([sys.executable, "-m", "embedworker", "status", "--json"], env=env,
                             capture_output=True, text=True, timeout=60)
    as_text = subprocess.run([sys.executable, "-m", "embedworker", "status"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    assert as_text.returncode == 0, as_text.stderr
    status = json.loads(as_json.stdout)
    assert status["total"] == 3
    assert status["byStatus"] == {"queued": 2, "processing": 0, "completed": 0, "failed": 1}
    assert status["byPriority"] == {"2": 3}
    assert status["failedByError"] == [{"error": "HTTP 422: no", "count": 1}]
    assert "HTTP 422: no" in as_text.stdout


async def test_watchdog_goes_silent_while_a_worker_is_wedged(
    db: asyncpg.Connection, config_file: Path, e5_server: StandinServer,
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("embedworker.worker.WEDGED_AFTER_S", 0.5)
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    notify_socket.setblocking(False)
    service, task = await start_service(config_file)
    e5_server.faults.latency_s = 4.0  # one request far longer than the (lowered) limit

    def pings() -> int:
        count = 0
        with suppress(BlockingIOError):
            while True:
                count += notify_socket.recv(4096).decode().splitlines().count("WATCHDOG=1")
        return count

    await wait_until(lambda: _async(pings() > 0))
    await insert_items(db, ["a text the model takes ages over"])
    await wait_until(lambda: _async(not service.health().ok))
    pings()
    await asyncio.sleep(1.0)  # five watchdog periods, all of them while wedged
    assert pings() == 0
    await wait_until(lambda: _count(db, "completed", 1), timeout=20)
    await wait_until(lambda: _async(pings() > 0))
    assert service.health().ok
    await stop_service(service, task)


async def _async(value: bool) -> bool:
    return value


# -- embedworker track / tracked / backfill / untrack -----------------------------------------


def test_tracking_commands(config_file: Path, database_url: str) -> None:
    import json

    async def sql(statement: str) -> object:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "embedworker", *args],
                              env=daemon_env(config_file), capture_output=True, text=True,
                              timeout=60)

    asyncio.run(sql("CREATE TABLE courses (id bigint PRIMARY KEY, title text, body text,"
                    " is_deleted boolean DEFAULT false)"))
    asyncio.run(sql("INSERT INTO courses SELECT n, 'course ' || n, 'about ' || n,"
                    " n % 5 = 0 FROM generate_series(1, 30) n"))

    result = cli("track", "courses", "course", "title", "body", "--where", "NOT is_deleted",
                 "--backfill", "--chunk-size", "7")
    assert result.returncode == 0, result.stderr
    assert asyncio.run(sql("SELECT count(*) FROM embedding_queue WHERE content_type = 'course'"
                           " AND status = 'queued'")) == 24
    listed = json.loads(cli("tracked", "--json").stdout)
    assert [(t["contentType"], t["textColumns"], t["installed"]) for t in listed] == [
        ("course", ["title", "body"], True)
    ]
    asyncio.run(sql("INSERT INTO courses VALUES (31, 'new course', 'fresh', false)"))
    assert asyncio.run(sql("SELECT content_text FROM embedding_queue WHERE content_id = 31")) \
        == "new course fresh"

    assert cli("untrack", "course").returncode == 0
    assert cli("untrack", "course").returncode == 1  # not tracked any more
    asyncio.run(sql("INSERT INTO courses VALUES (32, 'after untrack', 'x', false)"))
    assert asyncio.run(sql("SELECT count(*) FROM embedding_queue WHERE content_id = 32")) == 0
    missing = cli("track", "courses", "course", "nope")
    assert missing.returncode == 1
    assert "nope" in missing.stderr


def test_run_refuses_a_model_whose_column_has_another_dimension(config_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embedworker", "run"],
        env=daemon_env(config_file, EMBEDWORKER_MODELS__BGE_M3__DIMENSION="768"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "embedding_bge_m3 is vector(1024), the model gives vector(768)" in result.stderr
