"""`processes = 2`: one `embedworker run` whose worker processes share the queue, and which
systemd and Prometheus still see as one service."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from embedworker.exits import EXIT_UNAVAILABLE
from embedworker.standin import StandinServer
from tests.helpers import insert_items, statuses, taken_port, wait_until
from tests.integration.test_operate import daemon_env, metric_samples, receive_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, database_url: str, e5_url: str, bge_url: str, port: int,
                 e5_version: str = "1") -> None:
    path.write_text(
        f'database_url = "{database_url}"\nprocesses = 2\nconcurrency = 1\nbatch_size = 1\n'
        'retry_delay_s = 0\nretry_delay_max_s = 0\nlease_timeout_s = 5\nshutdown_grace_s = 5\n'
        f'poll_interval_s = 300\nlog_level = "warning"\nhttp_listen = "127.0.0.1:{port}"\n'
        f'[models.e5_small]\nurl = "{e5_url}"\nversion = "{e5_version}"\n'
        f'[models.bge_m3]\nurl = "{bge_url}"\n'
    )


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def supervisor(
    tmp_path: Path, database_url: str, e5_server: StandinServer, bge_server: StandinServer,
    notify_socket: socket.socket,
) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    port = free_port()
    config = tmp_path / "embedworker.toml"
    write_config(config, database_url, e5_server.url, bge_server.url, port)
    env = daemon_env(config, NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="2000000")
    with (tmp_path / "out.log").open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "embedworker", "run"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, config, port
    finally:
        workers = _workers(process)
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for worker in workers:
            if worker.is_running():
                worker.kill()


def _workers(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children()
    except psutil.NoSuchProcess:
        return []


async def test_two_worker_processes_are_one_service(
    supervisor: tuple[subprocess.Popen[bytes], Path, int], notify_socket: socket.socket,
    db: asyncpg.Connection, e5_server: StandinServer, bge_server: StandinServer,
    database_url: str,
) -> None:
    process, config, port = supervisor
    assert "READY=1" in await asyncio.to_thread(receive_until, notify_socket, "READY=1")
    workers = _workers(process)
    assert len(workers) == 2

    status, body = await asyncio.to_thread(get, port, "/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"]["processes"] == {"0": "ready", "1": "ready"}
    await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1")

    # Each process holds one item at a time: two items in flight at once means two processes
    # are claiming.
    e5_server.faults.latency_s = 0.5
    await insert_items(db, [f"shared by two processes {n}" for n in range(6)])
    await wait_until(lambda: _processing(db, 2), timeout=20)
    e5_server.faults.latency_s = 0.0
    await wait_until(lambda: _completed(db, 6), timeout=30)

    # One /metrics for both: the completed counters of the two processes add up.
    _, text = await asyncio.to_thread(get, port, "/metrics")
    assert metric_samples(text)[("embedworker_items_completed_total", ())] == 6
    _, body = await asyncio.to_thread(get, port, "/status")
    assert json.loads(body)["byStatus"]["completed"] == 6

    async def charted() -> bool:  # the status page's chart counts both processes' items
        _, page_data = await asyncio.to_thread(get, port, "/overview.json")
        return bool(sum(json.loads(page_data)["throughput"]["completed"]) == 6)

    await wait_until(charted, timeout=20)

    # One reload: SIGHUP reaches both processes; every later vector has the new version.
    write_config(config, database_url, e5_server.url, bge_server.url, port, e5_version="2")
    process.send_signal(signal.SIGHUP)
    await asyncio.to_thread(receive_until, notify_socket, "RELOADING=1")
    await asyncio.to_thread(receive_until, notify_socket, "READY=1")
    e5_server.faults.latency_s = 0.3
    await insert_items(db, [f"after the reload {n}" for n in range(6)], first_id=100)
    await wait_until(lambda: _processing(db, 2), timeout=20)
    e5_server.faults.latency_s = 0.0
    await wait_until(lambda: _completed(db, 12), timeout=30)
    assert await db.fetchval(
        "SELECT count(*) FROM embeddings WHERE content_id >= 100"
        " AND embedding_versions->>'e5_small' = '2'") == 6

    # One clean shutdown.
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(receive_until, notify_socket, "STOPPING=1")
    assert await asyncio.to_thread(process.wait, 30) == 0
    assert not any(worker.is_running() for worker in workers)
    assert "processing" not in await statuses(db)


async def test_a_worker_process_that_dies_stops_the_service(
    supervisor: tuple[subprocess.Popen[bytes], Path, int], notify_socket: socket.socket,
) -> None:
    process, _, _ = supervisor
    await asyncio.to_thread(receive_until, notify_socket, "READY=1")
    first, second = _workers(process)

    os.kill(first.pid, signal.SIGKILL)

    assert await asyncio.to_thread(process.wait, 30) == 1  # systemd's Restart= takes over
    await asyncio.to_thread(second.wait, 30)
    assert not second.is_running()


async def _processing(db: asyncpg.Connection, expected: int) -> bool:
    return (await statuses(db)).get("processing", 0) >= expected


async def _completed(db: asyncpg.Connection, expected: int) -> bool:
    return (await statuses(db)).get("completed", 0) == expected


async def test_an_http_listen_address_in_use_stops_the_start_before_any_worker(
    tmp_path: Path, db: asyncpg.Connection, database_url: str, e5_server: StandinServer,
    bge_server: StandinServer,
) -> None:
    await insert_items(db, ["waits for a service that can serve its endpoint"])
    with taken_port() as port:
        config = tmp_path / "embedworker.toml"
        write_config(config, database_url, e5_server.url, bge_server.url, port)
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "embedworker", "run"],
            env=daemon_env(config), capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == EXIT_UNAVAILABLE
    assert f"cannot listen on http_listen 127.0.0.1:{port}: Address already in use" \
        in result.stderr
    assert await statuses(db) == {"queued": 1}
