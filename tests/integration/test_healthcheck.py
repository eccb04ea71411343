"""`embedworker healthcheck` and `python -m embedworker.healthcheck` against a real
observability server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from embedworker import cli, healthcheck
from embedworker.config import Settings
from embedworker.db.stats import QueueStatus
from embedworker.ops.metrics import Metrics
from embedworker.ops.server import HealthReport, ObservabilityServer


class Health:
    """What the server's /healthz answers; tests flip it."""

    def __init__(self) -> None:
        self.report = HealthReport(ok=True)

    def __call__(self) -> HealthReport:
        return self.report


async def _no_status() -> QueueStatus:
    raise AssertionError("the health check must ask /healthz only")


@pytest.fixture
async def health() -> AsyncIterator[tuple[Health, int]]:
    answer = Health()
    metrics = Metrics(["e5_small"])
    server = ObservabilityServer(
        "127.0.0.1", 0, health=answer, ready=answer, metrics=lambda: metrics,
        status=_no_status,
    )
    await server.start()
    yield answer, server.port
    await server.stop()


def settings_listening(http_listen: str | None) -> Settings:
    return Settings(database_url="postgresql://unused@/postgres", http_listen=http_listen)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("http_listen", "url"),
    [
        ("0.0.0.0:9464", "http://127.0.0.1:9464/healthz"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080/healthz"),
        ("[::]:9464", "http://[::1]:9464/healthz"),
        ("[fd00::5]:9464", "http://[fd00::5]:9464/healthz"),
        ("worker.internal:9464", "http://worker.internal:9464/healthz"),
    ],
)
def test_the_url_follows_http_listen(http_listen: str, url: str) -> None:
    assert healthcheck.healthz_url(http_listen) == url


async def test_healthy_daemon_on_the_configured_port(health: tuple[Health, int]) -> None:
    _, port = health
    result = await asyncio.to_thread(healthcheck.probe, settings_listening(f"0.0.0.0:{port}"))
    assert result.healthy, result.message


async def test_unhealthy_daemon_gives_its_reasons(health: tuple[Health, int]) -> None:
    answer, port = health
    answer.report = HealthReport(ok=False, reasons=("worker 3: no progress for 120 s",))
    result = await asyncio.to_thread(healthcheck.probe, settings_listening(f"127.0.0.1:{port}"))
    assert not result.healthy
    assert "503" in result.message
    assert "worker 3: no progress for 120 s" in result.message


def test_nothing_listening_is_unhealthy() -> None:
    result = healthcheck.probe(settings_listening(f"127.0.0.1:{unused_port()}"), timeout_s=2)
    assert not result.healthy


def test_http_listen_off_is_unhealthy_and_says_why() -> None:
    result = healthcheck.probe(settings_listening(None))
    assert not result.healthy
    assert "http_listen is off" in result.message


async def test_both_commands_read_the_setting_from_the_environment(
    health: tuple[Health, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    answer, port = health
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused@/postgres")
    monkeypatch.setenv("EMBEDWORKER_HTTP_LISTEN", f"127.0.0.1:{port}")
    assert await asyncio.to_thread(healthcheck.main) == healthcheck.EXIT_HEALTHY
    assert await asyncio.to_thread(cli.main, ["healthcheck"]) == healthcheck.EXIT_HEALTHY

    answer.report = HealthReport(ok=False, reasons=("lease recovery: stalled",))
    assert await asyncio.to_thread(healthcheck.main) == healthcheck.EXIT_UNHEALTHY
    assert await asyncio.to_thread(cli.main, ["healthcheck"]) == healthcheck.EXIT_UNHEALTHY

    monkeypatch.setenv("EMBEDWORKER_HTTP_LISTEN", f"127.0.0.1:{unused_port()}")
    answer.report = HealthReport(ok=True)
    assert await asyncio.to_thread(healthcheck.main) == healthcheck.EXIT_UNHEALTHY


def test_invalid_configuration_is_unhealthy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused@/postgres")
    monkeypatch.setenv("EMBEDWORKER_HTTP_LISTEN", "no port here")
    assert healthcheck.main() == healthcheck.EXIT_UNHEALTHY
