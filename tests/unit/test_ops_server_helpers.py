"""The HTTP server's pure parts: listen addresses, heartbeats, readiness."""

from __future__ import annotations

import pytest

from embedworker.ops.server import parse_listen, readiness


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:0", ("::", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("localhost:8080", ("localhost", 8080)),
        (" metrics.internal:9100 ", ("metrics.internal", 9100)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "9464", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
     "::1:9464", "[::1]", "[not-ipv6]:9464", "[::1:9464", "host name:80", "127.0.0.1:-1",
     "127.0.0.1:٩٤"],
)
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_listen(value)


def test_readiness() -> None:
    assert readiness(database=True, listener=True, models={"e5": True, "bge": False}).ok
    assert readiness(database=True, listener=None, models={"e5": True}).ok

    report = readiness(database=False, listener=False, models={"e5": False, "bge": False})
    assert not report.ok
    assert report.reasons == (
        "database: unreachable",
        "listener: not connected",
        "models: none reachable (bge, e5)",
    )
    assert report.details == {
        "database": False, "listener": False, "models": {"e5": False, "bge": False},
    }


def test_readiness_says_why_a_model_is_down() -> None:
    report = readiness(database=True, listener=True, models={"e5": False, "bge": True},
                       model_problems={"e5": "HTTP 401: invalid token"})
    assert report.ok
    assert report.details["model_problems"] == {"e5": "HTTP 401: invalid token"}
