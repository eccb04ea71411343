"""The image built from the Dockerfile, run under podman against this session's PostgreSQL and
stand-in model servers: migrate, run, health, user, read-only root, reload, stop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from embedworker.standin import StandinServer
from tests.helpers import close_to, expected_bge, expected_e5, insert_items, statuses, wait_until
from tests.image.conftest import MEASURED, unused_port
from tests.image.podman import Container, Containers, inspect_image, podman

# The first test waits for the image to be built.
pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

SQL_FILES = sorted((Path(__file__).resolve().parents[2] / "sql").glob("*.sql"))
HEALTHY_TIMEOUT_S = 60.0
NON_ROOT_UID = "10001"


def daemon_env(database_url: str, e5: StandinServer, bge: StandinServer, http_port: int,
               **settings: Any) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "EMBEDWORKER_MODELS__E5_SMALL__URL": e5.url,
        "EMBEDWORKER_MODELS__BGE_M3__URL": bge.url,
        # Not the image's default port: the HEALTHCHECK has to follow the setting.
        "EMBEDWORKER_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "EMBEDWORKER_RETRY_DELAY_S": "0",
        "EMBEDWORKER_LEASE_TIMEOUT_S": "5",
    }
    env.update({f"EMBEDWORKER_{key.upper()}": str(value) for key, value in settings.items()})
    return env


async def start_healthy(containers: Containers, env: dict[str, str],
                        options: tuple[str, ...] = ()) -> tuple[Container, float]:
    """Starts the daemon; returns it once its HEALTHCHECK passes, with the seconds that took."""
    started = time.monotonic()
    container = await asyncio.to_thread(containers.start, env, options=options)

    async def healthy() -> bool:
        return await asyncio.to_thread(container.healthy)

    try:
        await wait_until(healthy, timeout=HEALTHY_TIMEOUT_S, interval=0.1)
    except AssertionError:
        raise AssertionError(f"never healthy; its output:\n{container.logs()}") from None
    return container, time.monotonic() - started


async def completed(db: asyncpg.Connection, n: int) -> None:
    async def all_completed() -> bool:
        return await statuses(db) == {"completed": n}

    await wait_until(all_completed, timeout=30)


async def stored_versions(db: asyncpg.Connection, content_id: int) -> dict[str, str]:
    versions = await db.fetchval(
        "SELECT embedding_versions FROM embeddings WHERE content_type = 'post' AND content_id = $1",
        content_id,
    )
    parsed: dict[str, str] = json.loads(versions)
    return parsed


async def test_migrate_creates_the_schema_and_is_safe_to_repeat(
    containers: Containers, empty_database_url: str
) -> None:
    env = {"DATABASE_URL": empty_database_url}
    first = await asyncio.to_thread(containers.run, env, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"applied {len(SQL_FILES)} migration(s)" in first.stdout

    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM embedworker_migrations")
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('embedding_queue', 'embeddings')"
        )
    finally:
        await conn.close()
    assert (applied, tables) == (len(SQL_FILES), 2)

    again = await asyncio.to_thread(containers.run, env, "migrate")
    assert again.returncode == 0, again.stderr
    assert "schema already current" in again.stdout


async def test_the_daemon_becomes_healthy_and_embeds_an_item_end_to_end(
    containers: Containers, database_url: str, db: asyncpg.Connection,
    e5_server: StandinServer, bge_server: StandinServer,
) -> None:
    port = unused_port()
    container, took = await start_healthy(
        containers, daemon_env(database_url, e5_server, bge_server, port)
    )
    MEASURED["start"] = f"{took:.1f} s from `podman run` to a passing HEALTHCHECK"

    text = "Kursus asas pengaturcaraan Python untuk pelajar baharu"
    await insert_items(db, [text])
    await completed(db, 1)
    row = await db.fetchrow(
        "SELECT embedding_e5_small, embedding_bge_m3, status FROM embeddings"
    )
    assert row["status"] == "completed"
    assert close_to(row["embedding_e5_small"], expected_e5(text))
    assert close_to(row["embedding_bge_m3"], expected_bge(text))

    # The same check, pointed at a port where nothing listens, fails: it asks the setting's port.
    elsewhere = await asyncio.to_thread(
        container.exec, "python", "-m", "embedworker.healthcheck",
        env={"EMBEDWORKER_HTTP_LISTEN": f"127.0.0.1:{unused_port()}"}, check=False,
    )
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    health = inspect_image(containers.image)["Healthcheck"]
    assert health["Test"] == ["CMD", "python", "-m", "embedworker.healthcheck"]


async def test_runs_as_a_non_root_user_on_a_read_only_root_file_system(
    containers: Containers, database_url: str,
    e5_server: StandinServer, bge_server: StandinServer,
) -> None:
    container, _ = await start_healthy(
        containers, daemon_env(database_url, e5_server, bge_server, unused_port())
    )
    assert inspect_image(containers.image)["Config"]["User"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    uid = await asyncio.to_thread(container.exec, "id", "-u")
    assert uid.stdout.strip() == NON_ROOT_UID
    assert container.inspect()["HostConfig"]["ReadonlyRootfs"] is True
    write = await asyncio.to_thread(
        container.exec, "python", "-c", "open('/tmp/probe', 'w')", check=False
    )
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    assert container.running()


async def test_sighup_reloads_the_configuration_file(
    containers: Containers, database_url: str, db: asyncpg.Connection,
    e5_server: StandinServer, bge_server: StandinServer, tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    toml = config / "embedworker.toml"
    toml.write_text('[models.e5_small]\nversion = "1"\n')
    port = unused_port()
    env = daemon_env(database_url, e5_server, bge_server, port,
                     config="/etc/embedworker/embedworker.toml")
    container, _ = await start_healthy(
        containers, env, options=("--volume", f"{config}:/etc/embedworker:ro")
    )
    await insert_items(db, ["before the reload"], first_id=1)
    await completed(db, 1)
    assert await stored_versions(db, 1) == {"e5_small": "1", "bge_m3": "1"}

    toml.write_text('[models.e5_small]\nversion = "2"\n')
    await asyncio.to_thread(podman, "kill", "--signal", "HUP", container.name)

    async def version_two_configured() -> bool:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            status = (await client.get(f"http://127.0.0.1:{port}/status")).json()
        return bool(status["models"]["e5_small"]["version"] == "2")

    await wait_until(version_two_configured, timeout=20, interval=0.2)
    await insert_items(db, ["after the reload"], first_id=2)
    await completed(db, 2)
    assert await stored_versions(db, 2) == {"e5_small": "2", "bge_m3": "1"}
    assert container.running()
    assert container.inspect()["RestartCount"] == 0


async def stop_with_a_batch_in_flight(
    containers: Containers, db: asyncpg.Connection, env: dict[str, str], e5: StandinServer,
    *, model_latency_s: float, texts: list[str], stop_timeout_s: int,
) -> tuple[Container, float]:
    """Starts the daemon with ``--stop-timeout``, makes the e5 model slow, queues ``texts`` and
    runs `podman stop` once a batch is 'processing'; returns the container and the seconds the
    stop took."""
    container, _ = await start_healthy(
        containers, env, options=("--stop-timeout", str(stop_timeout_s))
    )
    e5.faults.latency_s = model_latency_s
    await insert_items(db, texts)

    async def in_flight() -> bool:
        return (await statuses(db)).get("processing", 0) > 0

    await wait_until(in_flight, timeout=15)
    started = time.monotonic()
    await asyncio.to_thread(podman, "stop", container.name, timeout=stop_timeout_s + 30)
    return container, time.monotonic() - started


async def test_stop_lets_the_batch_in_flight_finish_and_exits_zero(
    containers: Containers, database_url: str, db: asyncpg.Connection,
    e5_server: StandinServer, bge_server: StandinServer,
) -> None:
    grace_s = 20
    # A stop timeout above the grace period, as the README says (podman's default is 10 s).
    container, took = await stop_with_a_batch_in_flight(
        containers, db,
        daemon_env(database_url, e5_server, bge_server, unused_port(), shutdown_grace_s=grace_s),
        e5_server, model_latency_s=3.0, texts=["one", "two", "three"], stop_timeout_s=grace_s + 10,
    )
    assert container.exit_code() == 0
    assert took < grace_s
    assert await statuses(db) == {"completed": 3}
    MEASURED["stop"] = f"{took:.1f} s for `podman stop` with a 3 s batch in flight"


async def test_stop_after_the_grace_period_releases_the_batch_and_exits_zero(
    containers: Containers, database_url: str, db: asyncpg.Connection,
    e5_server: StandinServer, bge_server: StandinServer,
) -> None:
    # The model takes longer than the 2 s grace period, and less than the stop timeout.
    container, took = await stop_with_a_batch_in_flight(
        containers, db,
        daemon_env(database_url, e5_server, bge_server, unused_port(), shutdown_grace_s=2),
        e5_server, model_latency_s=25.0, texts=["slow"], stop_timeout_s=30,
    )
    assert container.exit_code() == 0
    assert took < 20  # the grace period and a little, not the model's 25 s
    rows = await db.fetch("SELECT status, retry_count FROM embedding_queue")
    assert [(row["status"], row["retry_count"]) for row in rows] == [("queued", 0)]
