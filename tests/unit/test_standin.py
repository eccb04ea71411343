"""Tests of the deterministic stand-in model server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from embedworker import standin
from embedworker.standin import Faults, StandinServer, deterministic_vector

MODEL = "test-model"
DIM = 16
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    server: StandinServer,
    method: str,
    path: str,
    payload: object = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT_S)
    try:
        return request(conn, method, path, payload, raw=raw, headers=headers)
    finally:
        conn.close()


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    payload: object = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on an existing (possibly kept-alive) connection."""
    body = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    return Answer(response.status, dict(response.getheaders()), response.read())


def embed_batch(server: StandinServer, inputs: list[str], **extra: object) -> Answer:
    return call(server, "POST", "/embed/batch", {"inputs": inputs, **extra})


@pytest.fixture
def server() -> Iterator[StandinServer]:
    with StandinServer(MODEL, DIM, max_batch=4) as running:
        yield running


# -- deterministic_vector ---------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 7, 384, 1024])
def test_vector_has_dim_and_unit_norm(dim: int) -> None:
    vector = deterministic_vector(MODEL, "hello", dim)
    assert len(vector) == dim
    assert math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-12)


def test_vector_is_deterministic_and_input_sensitive() -> None:
    first = deterministic_vector(MODEL, "hello", 64)
    assert deterministic_vector(MODEL, "hello", 64) == first
    assert deterministic_vector(MODEL, "hello!", 64) != first
    assert deterministic_vector("other-model", "hello", 64) != first


def test_vector_is_pinned() -> None:
    # Guards against accidental algorithm changes, which would invalidate stored fixtures.
    pinned = [-0.807933582586, -0.040772166184, -0.574563666076, 0.124328396676]
    vector = deterministic_vector("e5_small", "hello", 4)
    assert vector == pytest.approx(pinned, abs=1e-11)


# -- hfspace protocol -------------------------------------------------------------------------


def test_root_and_healthz(server: StandinServer) -> None:
    root = call(server, "GET", "/")
    assert (root.status, root.json()) == (200, {"status": "running", "model": MODEL})
    health = call(server, "GET", "/healthz")
    assert health.status == 200
    assert health.json() == {"status": "ok", "device": "cpu", "model": "SentenceTransformer"}


def test_batch_returns_deterministic_vectors(server: StandinServer) -> None:
    answer = embed_batch(server, ["alpha", "beta"])
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "embeddings": [
            deterministic_vector(MODEL, "alpha", DIM),
            deterministic_vector(MODEL, "beta", DIM),
        ],
        "count": 2,
        "dim": DIM,
    }


@pytest.mark.parametrize(("task", "prefix"), [("passage", "passage: "), ("query", "query: ")])
def test_batch_task_prefixes_the_text(server: StandinServer, task: str, prefix: str) -> None:
    answer = embed_batch(server, ["alpha"], task=task)
    assert answer.status == 200
    assert answer.json()["embeddings"] == [deterministic_vector(MODEL, prefix + "alpha", DIM)]
    assert server.texts == ["alpha"]


def test_single_embed(server: StandinServer) -> None:
    plain = call(server, "POST", "/embed", {"input": "alpha"})
    assert plain.status == 200
    assert plain.json() == {"embedding": deterministic_vector(MODEL, "alpha", DIM), "dim": DIM}
    query = call(server, "POST", "/embed", {"input": "alpha", "task": "query"})
    assert query.json()["embedding"] == deterministic_vector(MODEL, "query: alpha", DIM)


def test_counters_record_requests_and_raw_inputs(server: StandinServer) -> None:
    embed_batch(server, ["a", "b", "c"], task="passage")
    call(server, "POST", "/embed", {"input": "d"})
    embed_batch(server, ["a"] * 5)
    assert server.requests == 3
    assert server.inputs_embedded == 4
    assert server.batch_sizes == [3, 1]
    assert server.texts == ["a", "b", "c", "d"]
    server.reset_counters()
    assert (server.requests, server.inputs_embedded, server.batch_sizes, server.texts) == (
        0,
        0,
        [],
        [],
    )


def test_batch_above_max_batch_is_413(server: StandinServer) -> None:
    answer = embed_batch(server, ["x"] * 5)
    assert (answer.status, answer.json()) == (413, {"detail": "batch too large: 5 > 4"})


@pytest.mark.parametrize("blank", ["", "  \n\t"])
def test_empty_input_is_422(server: StandinServer, blank: str) -> None:
    answer = embed_batch(server, ["fine", blank])
    assert (answer.status, answer.json()) == (422, {"detail": "input 1 is empty"})
    assert call(server, "POST", "/embed", {"input": blank}).status == 422


def test_unknown_task_is_422(server: StandinServer) -> None:
    assert embed_batch(server, ["x"], task="document").status == 422
    assert call(server, "POST", "/embed", {"input": "x", "task": 3}).status == 422


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"inputs": "abc"}', b'{"inputs": [1, 2]}', b"{}"],
)
def test_malformed_batch_body_is_400(server: StandinServer, raw: bytes) -> None:
    answer = call(server, "POST", "/embed/batch", raw=raw)
    assert answer.status == 400
    assert isinstance(answer.json()["detail"], str)


def test_unknown_path_is_404(server: StandinServer) -> None:
    assert call(server, "GET", "/nope").status == 404
    assert call(server, "POST", "/embed/nope", {"input": "x"}).status == 404


def test_keep_alive_connection_serves_many_requests(server: StandinServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT_S)
    try:
        for text in ["a", "b", "c"]:
            answer = request(conn, "POST", "/embed", {"input": text})
            assert answer.status == 200
            assert answer.headers.get("Connection") != "close"
        assert request(conn, "GET", "/healthz").status == 200
    finally:
        conn.close()


def test_api_key_is_required_on_posts() -> None:
    with StandinServer(MODEL, DIM, api_key="s3cret") as server:
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}]:
            answer = call(server, "POST", "/embed/batch", {"inputs": ["x"]}, headers=headers)
            assert (answer.status, answer.json()) == (401, {"detail": "invalid token"})
        good = {"Authorization": "Bearer s3cret"}
        assert call(server, "POST", "/embed/batch", {"inputs": ["x"]}, headers=good).status == 200
        assert call(server, "POST", "/embed/nope", {}, headers={}).status == 401
        assert call(server, "GET", "/healthz").status == 200


# -- faults -----------------------------------------------------------------------------------


def test_fail_next_with_retry_after_then_recovers(server: StandinServer) -> None:
    server.faults.fail_next(2, 503, retry_after=1.5)
    for _ in range(2):
        answer = embed_batch(server, ["x"])
        assert (answer.status, answer.json()) == (503, {"detail": "injected 503"})
        assert answer.headers["Retry-After"] == "1.5"
    recovered = embed_batch(server, ["x"])
    assert recovered.status == 200
    assert "Retry-After" not in recovered.headers
    assert server.requests == 3
    assert server.texts == ["x"]


def test_fail_next_without_retry_after(server: StandinServer) -> None:
    server.faults.fail_next(1, 500)
    answer = call(server, "POST", "/embed", {"input": "x"})
    assert (answer.status, answer.json()) == (500, {"detail": "injected 500"})
    assert "Retry-After" not in answer.headers


def test_error_rate_picks_among_retryable_statuses(server: StandinServer) -> None:
    server.faults.error_rate = 1.0
    statuses = {embed_batch(server, ["x"]).status for _ in range(30)}
    assert statuses <= {500, 503, 429}
    assert len(statuses) > 1
    server.faults.error_rate = 0.0
    assert embed_batch(server, ["x"]).status == 200


def test_error_rate_is_reproducible_for_a_seed() -> None:
    def draws(faults: Faults) -> list[tuple[int, float | None] | None]:
        faults.error_rate = 0.5
        return [faults.take_injected() for _ in range(50)]

    assert draws(Faults(seed=7)) == draws(Faults(seed=7))
    assert None in draws(Faults(seed=7))


def test_latency_delays_embed_requests(server: StandinServer) -> None:
    server.faults.latency_s = 0.2
    started = time.monotonic()
    assert embed_batch(server, ["x"]).status == 200
    assert time.monotonic() - started >= 0.2


def test_poison_marker_rejects_the_whole_batch(server: StandinServer) -> None:
    server.faults.poison_marker = "@@poison@@"
    answer = embed_batch(server, ["fine", "not @@poison@@ fine"])
    assert (answer.status, answer.json()) == (
        422,
        {"detail": "input rejected: contains forbidden content"},
    )
    assert embed_batch(server, ["fine"]).status == 200


def test_unknown_malform_is_refused() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="unknown malform"):
        faults.malform = "garbage"
    assert faults.malform is None


def test_malform_wrong_dim(server: StandinServer) -> None:
    server.faults.malform = "wrong_dim"
    answer = embed_batch(server, ["a", "b"])
    assert answer.status == 200
    assert [len(vector) for vector in answer.json()["embeddings"]] == [DIM - 1, DIM - 1]


def test_malform_nan(server: StandinServer) -> None:
    server.faults.malform = "nan"
    answer = embed_batch(server, ["a", "b"])
    assert answer.status == 200
    assert b"NaN" in answer.body
    vectors = answer.json()["embeddings"]
    assert math.isnan(vectors[0][0])
    assert vectors[1] == deterministic_vector(MODEL, "b", DIM)


def test_malform_wrong_count(server: StandinServer) -> None:
    server.faults.malform = "wrong_count"
    answer = embed_batch(server, ["a", "b", "c"])
    assert answer.status == 200
    assert len(answer.json()["embeddings"]) == 2


def test_malform_not_json(server: StandinServer) -> None:
    server.faults.malform = "not_json"
    answer = embed_batch(server, ["a"])
    assert answer.status == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_unhealthy_server(server: StandinServer) -> None:
    server.faults.healthy = False
    health = call(server, "GET", "/healthz")
    assert (health.status, health.json()) == (503, {"status": "error", "msg": "model not loaded"})
    answer = embed_batch(server, ["x"])
    assert (answer.status, answer.json()) == (503, {"detail": "model loading"})
    server.faults.clear()
    assert call(server, "GET", "/healthz").status == 200


def test_down_refuses_connections_and_up_serves_on_the_same_port(server: StandinServer) -> None:
    port = server.port
    kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        assert request(kept_alive, "GET", "/healthz").status == 200
        server.down()
        with pytest.raises(ConnectionRefusedError):
            call(server, "GET", "/healthz")
        with pytest.raises((OSError, http.client.HTTPException)):
            request(kept_alive, "GET", "/healthz")
    finally:
        kept_alive.close()
    server.up()
    assert server.port == port
    assert embed_batch(server, ["x"]).status == 200


# -- CLI --------------------------------------------------------------------------------------


def read_line(stream: Any, timeout_s: float) -> str:
    """Read one line from a pipe, failing the test if none arrives in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        pytest.fail(f"no line within {timeout_s}s")


def test_cli_serves_until_sigterm() -> None:
    repo = Path(standin.__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "embedworker.standin", "--model", MODEL, "--dim", "8"]
    proc = subprocess.Popen(
        [*command, "--max-batch", "2", "--latency-ms", "1"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc.stdout, TIMEOUT_S)
        assert line.startswith("listening on http://127.0.0.1:")
        port = int(line.strip().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        try:
            answer = request(conn, "POST", "/embed/batch", {"inputs": ["a", "b"]})
        finally:
            conn.close()
        assert answer.status == 200
        assert answer.json()["embeddings"][1] == deterministic_vector(MODEL, "b", 8)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
