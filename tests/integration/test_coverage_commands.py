"""Coverage everywhere an operator looks: `status`, `status --json`, `check`, `reembed` and the
running daemon's /metrics and /status."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.service import Service
from embedworker.standin import StandinServer
from tests.helpers import insert_items, wait_until
from tests.integration.test_operate import (
    config_file,  # noqa: F401  (a fixture)
    daemon_env,
    metric_samples,
    start_service,
    stop_service,
    write_config,
)

VERSION_2 = {"EMBEDWORKER_MODELS__E5_SMALL__VERSION": "2"}


def cli(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "embedworker", *args],
                          env=daemon_env(config, **env), capture_output=True, text=True,
                          timeout=60)


async def test_a_changed_version_shows_in_status_and_check_and_reembed_fixes_it(
    db: asyncpg.Connection, config_file: Path, make_settings: Callable[..., Settings]  # noqa: F811
) -> None:
    await insert_items(db, [f"post {n}" for n in range(6)], content_type="post")
    await insert_items(db, [f"lesson {n}" for n in range(4)], content_type="lesson")
    assert await Service(make_settings(), drain=True).run() == 0

    status = json.loads((await asyncio.to_thread(cli, config_file, "status", "--json")).stdout)
    no_index = {"state": "none", "name": None, "method": None}
    assert status["models"] == {
        "e5_small": {"version": "1", "current": 10, "outdated": 0, "missing": 0,
                     "index": no_index},
        "bge_m3": {"version": "1", "current": 10, "outdated": 0, "missing": 0,
                   "index": no_index},
    }
    checked = await asyncio.to_thread(cli, config_file, "check")
    assert checked.returncode == 0
    assert not [line for line in checked.stdout.splitlines() if not line.startswith("ok")]

    status = json.loads(
        (await asyncio.to_thread(cli, config_file, "status", "--json", **VERSION_2)).stdout
    )
    assert status["models"]["e5_small"] == {
        "version": "2", "current": 0, "outdated": 10, "missing": 0, "index": no_index
    }
    assert status["models"]["bge_m3"]["current"] == 10
    text = (await asyncio.to_thread(cli, config_file, "status", **VERSION_2)).stdout
    assert "embedworker reembed e5_small" in text
    checked = await asyncio.to_thread(cli, config_file, "check", **VERSION_2)
    assert checked.returncode == 0  # a warning, not a failure
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("warn")]
    assert len(warnings) == 1
    assert "coverage e5_small" in warnings[0]
    assert "10 of another version" in warnings[0]
    assert "embedworker reembed e5_small" in warnings[0]

    lessons = await asyncio.to_thread(
        cli, config_file, "reembed", "e5_small", "--content-type", "lesson", **VERSION_2
    )
    assert lessons.returncode == 0, lessons.stderr
    assert lessons.stdout.splitlines()[-1] == \
        "e5_small: queued 4 for version 2 (0 already in the queue, 4 rows scanned)"
    everything = await asyncio.to_thread(
        cli, config_file, "reembed", "e5_small", "--chunk-size", "3", **VERSION_2
    )
    assert everything.stdout.splitlines()[-1] == \
        "e5_small: queued 6 for version 2 (4 already in the queue, 10 rows scanned)"
    assert await db.fetchval(
        "SELECT count(*) FROM embedding_queue WHERE status = 'queued' AND priority = 10") == 10


async def test_reembed_refuses_a_model_that_is_not_enabled(config_file: Path) -> None:  # noqa: F811
    result = await asyncio.to_thread(cli, config_file, "reembed", "e5_large")
    assert result.returncode == 2
    assert "no enabled model named 'e5_large'" in result.stderr
    assert "e5_small" in result.stderr


async def test_metrics_and_status_of_the_running_daemon_show_parked_work_and_coverage(
    db: asyncpg.Connection, tmp_path: Path, database_url: str, e5_server: StandinServer,
    bge_server: StandinServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    monkeypatch.setattr("embedworker.db.stats.COVERAGE_MAX_AGE_S", 0.0)  # recount every scrape
    path = tmp_path / "http.toml"
    write_config(path, database_url, e5_server.url, bge_server.url, http_listen="127.0.0.1:0")
    bge_server.faults.healthy = False
    service, task = await start_service(path)
    await insert_items(db, [f"observed {n}" for n in range(5)])
    assert service.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as client:

        async def parked() -> bool:
            samples = metric_samples((await client.get("/metrics")).text)
            return samples[("embedworker_queue_waiting_items", (("model", "bge_m3"),))] == 5

        await wait_until(parked, timeout=30)
        samples = metric_samples((await client.get("/metrics")).text)
        assert samples[("embedworker_queue_queued_items", (("state", "waiting_for_model"),))] == 5
        assert samples[("embedworker_queue_queued_items", (("state", "due"),))] == 0
        vectors = "embedworker_model_vectors"
        assert samples[(vectors, (("model", "e5_small"), ("state", "current")))] == 5
        assert samples[(vectors, (("model", "bge_m3"), ("state", "missing")))] == 5
        assert samples[("embedworker_model_version_info",
                        (("model", "e5_small"), ("version", "1")))] == 1
        status = (await client.get("/status")).json()
        assert status["waitingForModel"] == 5
        assert status["waitingByModel"] == {"bge_m3": 5}
        assert status["byStatus"]["queued"] == 5
        # still ready: e5 works
        assert (await client.get("/readyz")).status_code == 200
        bge_server.faults.healthy = True
        await wait_until(lambda: _completed(db, 5), timeout=30)
    await stop_service(service, task)


async def _completed(db: asyncpg.Connection, expected: int) -> bool:
    count = await db.fetchval("SELECT count(*) FROM embedding_queue WHERE status = 'completed'")
    return bool(count == expected)
