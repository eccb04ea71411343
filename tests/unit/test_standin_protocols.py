"""Tests of the stand-in server's tei, openai and ollama protocols, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from embedworker import standin
from embedworker.standin import POISON_DETAIL, StandinServer, deterministic_vector

MODEL = "test-model"
DIM = 16
MAX_BATCH = 4
TIMEOUT_S = 10.0
TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    target: StandinServer | int,
    method: str,
    path: str,
    payload: object = None,
    *,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection to a server or a port."""
    port = target if isinstance(target, int) else target.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        conn.request(
            method, path, body=body, headers={"Content-Type": "application/json"} | (headers or {})
        )
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def openai_vectors(answer: Answer) -> list[Any]:
    """The embeddings of an /v1/embeddings answer, sorted by index."""
    data = sorted(answer.json()["data"], key=lambda item: item["index"])
    return [item["embedding"] for item in data]


@dataclass(frozen=True)
class Dialect:
    """How a test speaks one protocol: embed path and payload, vectors and error message."""

    name: str
    embed_path: str
    payload: Callable[[object], dict[str, object]]
    vectors: Callable[[Answer], list[Any]]
    message: Callable[[Answer], str]
    health_path: str
    rejects_with: int


DIALECTS: dict[str, Dialect] = {
    "hfspace": Dialect(
        "hfspace",
        "/embed/batch",
        lambda inputs: {"inputs": inputs},
        lambda answer: answer.json()["embeddings"],
        lambda answer: answer.json()["detail"],
        "/healthz",
        422,
    ),
    "tei": Dialect(
        "tei",
        "/embed",
        lambda inputs: {"inputs": inputs},
        lambda answer: answer.json(),
        lambda answer: answer.json()["error"],
        "/health",
        422,
    ),
    "openai": Dialect(
        "openai",
        "/v1/embeddings",
        lambda inputs: {"model": MODEL, "input": inputs},
        openai_vectors,
        lambda answer: answer.json()["error"]["message"],
        "/v1/models",
        400,
    ),
    "ollama": Dialect(
        "ollama",
        "/api/embed",
        lambda inputs: {"model": MODEL, "input": inputs},
        lambda answer: answer.json()["embeddings"],
        lambda answer: answer.json()["error"],
        "/api/tags",
        400,
    ),
}
NEW_PROTOCOLS = ["tei", "openai", "ollama"]


def embed(server: StandinServer, inputs: object, **extra: object) -> Answer:
    dialect = DIALECTS[server.protocol]
    return call(server, "POST", dialect.embed_path, dialect.payload(inputs) | extra)


def expected(*texts: str) -> list[list[float]]:
    return [deterministic_vector(MODEL, text, DIM) for text in texts]


@pytest.fixture(params=NEW_PROTOCOLS)
def server(request: pytest.FixtureRequest) -> Iterator[StandinServer]:
    with StandinServer(MODEL, DIM, max_batch=MAX_BATCH, protocol=request.param) as running:
        yield running


def serve(protocol: str, **options: Any) -> StandinServer:
    return StandinServer(MODEL, DIM, max_batch=MAX_BATCH, protocol=protocol, **options)


@pytest.fixture
def tei() -> Iterator[StandinServer]:
    with serve("tei") as running:
        yield running


@pytest.fixture
def openai() -> Iterator[StandinServer]:
    with serve("openai") as running:
        yield running


@pytest.fixture
def ollama() -> Iterator[StandinServer]:
    with serve("ollama") as running:
        yield running


# -- behaviour shared by the three protocols --------------------------------------------------


def test_batch_vectors_in_input_order(server: StandinServer) -> None:
    answer = embed(server, ["alpha", "beta", "gamma"])
    assert answer.status == 200
    assert DIALECTS[server.protocol].vectors(answer) == expected("alpha", "beta", "gamma")
    assert (server.requests, server.inputs_embedded, server.texts) == (
        1,
        3,
        ["alpha", "beta", "gamma"],
    )


def test_single_string_gives_one_vector_without_prefix(server: StandinServer) -> None:
    answer = embed(server, "passage: alpha")
    assert answer.status == 200
    assert DIALECTS[server.protocol].vectors(answer) == expected("passage: alpha")


def test_poison_is_rejected_with_the_message(server: StandinServer) -> None:
    dialect = DIALECTS[server.protocol]
    server.faults.poison_marker = "@@poison@@"
    answer = embed(server, ["fine", "not @@poison@@ fine"])
    assert answer.status == dialect.rejects_with
    assert dialect.message(answer) == POISON_DETAIL
    assert embed(server, ["fine"]).status == 200


@pytest.mark.parametrize("inputs", ["", [], ["fine", "  \n"]])
def test_empty_input_is_rejected(server: StandinServer, inputs: object) -> None:
    dialect = DIALECTS[server.protocol]
    answer = embed(server, inputs)
    assert answer.status == dialect.rejects_with
    message = "`inputs` cannot be empty" if server.protocol == "tei" else "input cannot be empty"
    assert dialect.message(answer) == message
    assert server.inputs_embedded == 0


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
def test_oversize_batch_is_413(protocol: str) -> None:
    with serve(protocol) as server:
        answer = embed(server, ["x"] * 5)
        assert answer.status == 413
        assert DIALECTS[protocol].message(answer) == "batch size 5 exceeds maximum 4"
        assert embed(server, ["x"] * 4).status == 200


@pytest.mark.parametrize("status", [413, 422])
def test_tei_oversize_status_is_configurable(status: int) -> None:
    with serve("tei", tei_oversize_status=status) as server:
        answer = embed(server, ["x"] * 5)
        assert (answer.status, answer.json()) == (
            status,
            {"error": "batch size 5 > maximum allowed batch size 4", "error_type": "Validation"},
        )


def test_tei_oversize_status_must_be_413_or_422() -> None:
    with pytest.raises(ValueError, match="413 or 422"):
        serve("tei", tei_oversize_status=400)


def test_unhealthy_server_fails_health_and_embeds(server: StandinServer) -> None:
    dialect = DIALECTS[server.protocol]
    assert call(server, "GET", dialect.health_path).status == 200
    server.faults.healthy = False
    assert call(server, "GET", dialect.health_path).status == 503
    answer = embed(server, ["x"])
    assert (answer.status, dialect.message(answer)) == (503, "model loading")
    server.faults.clear()
    assert call(server, "GET", dialect.health_path).status == 200
    assert embed(server, ["x"]).status == 200


def test_fail_next_answers_the_status_with_retry_after(server: StandinServer) -> None:
    dialect = DIALECTS[server.protocol]
    server.faults.fail_next(1, 429, retry_after=2)
    answer = embed(server, ["x"])
    assert (answer.status, dialect.message(answer)) == (429, "injected 429")
    assert answer.headers["Retry-After"] == "2"
    assert embed(server, ["x"]).status == 200


@pytest.mark.parametrize("malform", ["wrong_dim", "nan", "wrong_count"])
def test_malformed_vectors(server: StandinServer, malform: str) -> None:
    server.faults.malform = malform
    answer = embed(server, ["a", "b", "c"])
    assert answer.status == 200
    vectors = DIALECTS[server.protocol].vectors(answer)
    if malform == "wrong_dim":
        assert [len(vector) for vector in vectors] == [DIM - 1] * 3
    elif malform == "nan":
        assert math.isnan(vectors[0][0])
        assert vectors[1:] == expected("b", "c")
    else:
        assert vectors == expected("a", "b")


def test_malformed_not_json(server: StandinServer) -> None:
    server.faults.malform = "not_json"
    answer = embed(server, ["a"])
    assert answer.status == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()


@pytest.mark.parametrize("raw_payload", [{"inputs": 3, "input": 3}, {"inputs": [1], "input": [1]}])
def test_non_string_inputs_are_rejected(
    server: StandinServer, raw_payload: dict[str, object]
) -> None:
    dialect = DIALECTS[server.protocol]
    payload = dialect.payload("x") | raw_payload
    answer = call(server, "POST", dialect.embed_path, payload)
    assert answer.status == dialect.rejects_with
    assert "must be a string or a list of strings" in dialect.message(answer)


# -- tei --------------------------------------------------------------------------------------


def test_tei_single_string_returns_a_list_of_one_vector(tei: StandinServer) -> None:
    answer = call(tei, "POST", "/embed", {"inputs": "alpha", "truncate": True, "normalize": True})
    assert (answer.status, answer.json()) == (200, expected("alpha"))


def test_tei_health_and_info(tei: StandinServer) -> None:
    health = call(tei, "GET", "/health")
    assert (health.status, health.body) == (200, b"")
    info = call(tei, "GET", "/info")
    assert info.status == 200
    assert info.json()["model_id"] == MODEL
    assert info.json()["max_client_batch_size"] == MAX_BATCH
    assert (info.json()["max_batch_tokens"], info.json()["max_input_length"]) == (16384, 512)
    tei.faults.healthy = False
    unhealthy = call(tei, "GET", "/health")
    assert (unhealthy.status, unhealthy.json()) == (
        503,
        {"error": "unhealthy", "error_type": "Unhealthy"},
    )
    assert call(tei, "GET", "/info").status == 200


@pytest.mark.parametrize(
    ("status", "error_type"), [(429, "Overloaded"), (503, "Overloaded"), (500, "Backend")]
)
def test_tei_injected_error_types(tei: StandinServer, status: int, error_type: str) -> None:
    tei.faults.fail_next(1, status)
    answer = embed(tei, ["x"])
    assert (answer.status, answer.json()) == (
        status,
        {"error": f"injected {status}", "error_type": error_type},
    )


def test_tei_poison_and_empty_are_validation_errors(tei: StandinServer) -> None:
    tei.faults.poison_marker = "@@"
    poisoned = embed(tei, ["@@"])
    assert poisoned.json() == {"error": POISON_DETAIL, "error_type": "Validation"}
    assert embed(tei, [""]).json() == {
        "error": "`inputs` cannot be empty",
        "error_type": "Validation",
    }


def test_tei_rejects_bad_flags_and_bodies(tei: StandinServer) -> None:
    assert embed(tei, ["x"], truncate="yes").status == 422
    assert embed(tei, ["x"], normalize=1).status == 422
    assert call(tei, "POST", "/embed", ["x"]).status == 400


def test_tei_api_key_guards_every_route() -> None:
    with serve("tei", api_key=TOKEN) as server:
        for method, path in [("POST", "/embed"), ("GET", "/health"), ("GET", "/info")]:
            denied = call(server, method, path, {"inputs": ["x"]} if method == "POST" else None)
            assert (denied.status, denied.body) == (401, b"")
            assert call(server, method, path, {"inputs": ["x"]}, headers=AUTH).status == 200
        assert server.requests == 2


def test_tei_unknown_path_is_404(tei: StandinServer) -> None:
    assert call(tei, "GET", "/embed").status == 404
    assert call(tei, "POST", "/v1/embeddings", {"input": "x"}).status == 404


# -- openai -----------------------------------------------------------------------------------


def test_openai_answer_is_shuffled_but_indexed(openai: StandinServer) -> None:
    answer = call(openai, "POST", "/v1/embeddings", {"model": MODEL, "input": ["a b", "c", "d"]})
    assert answer.status == 200
    body = answer.json()
    assert [item["index"] for item in body["data"]] == [2, 1, 0]
    assert {item["object"] for item in body["data"]} == {"embedding"}
    assert openai_vectors(answer) == expected("a b", "c", "d")
    assert (body["object"], body["model"]) == ("list", MODEL)
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_openai_unshuffled_option() -> None:
    with serve("openai", openai_shuffle=False) as server:
        answer = embed(server, ["a", "b", "c"])
        assert [item["index"] for item in answer.json()["data"]] == [0, 1, 2]


def decode_float32(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_openai_base64_is_little_endian_float32(openai: StandinServer) -> None:
    answer = embed(openai, ["alpha", "beta"], encoding_format="base64")
    assert answer.status == 200
    encoded = openai_vectors(answer)
    assert all(isinstance(vector, str) for vector in encoded)
    for vector, want in zip(encoded, expected("alpha", "beta"), strict=True):
        assert decode_float32(vector) == pytest.approx(want, abs=1e-6)
    assert (
        embed(openai, ["alpha"], encoding_format="float").json()["data"][0]["embedding"]
        == (expected("alpha")[0])
    )


def test_openai_base64_nan_malform(openai: StandinServer) -> None:
    openai.faults.malform = "nan"
    answer = embed(openai, ["alpha", "beta"], encoding_format="base64")
    first, second = (decode_float32(vector) for vector in openai_vectors(answer))
    assert math.isnan(first[0])
    assert second == pytest.approx(expected("beta")[0], abs=1e-6)


def test_openai_base64_can_be_ignored() -> None:
    with serve("openai", openai_base64=False) as server:
        answer = embed(server, ["alpha"], encoding_format="base64")
        assert openai_vectors(answer) == expected("alpha")


def test_openai_rejects_an_unknown_encoding_format(openai: StandinServer) -> None:
    answer = embed(openai, ["alpha"], encoding_format="binary")
    assert answer.status == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("model", "shown"), [("other", "other"), (None, "")])
def test_openai_unknown_or_missing_model_is_404(
    openai: StandinServer, model: str | None, shown: str
) -> None:
    payload: dict[str, object] = {"input": ["x"]} | ({} if model is None else {"model": model})
    answer = call(openai, "POST", "/v1/embeddings", payload)
    assert (answer.status, answer.json()) == (
        404,
        {
            "error": {
                "message": f"The model `{shown}` does not exist",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )


def test_openai_error_shapes(openai: StandinServer) -> None:
    openai.faults.fail_next(1, 429)
    openai.faults.fail_next(1, 500)
    limited, failed = embed(openai, ["x"]).json()["error"], embed(openai, ["x"]).json()["error"]
    assert (limited["type"], limited["code"]) == ("requests", "rate_limit_exceeded")
    assert (failed["type"], failed["code"]) == ("server_error", None)
    oversize = embed(openai, ["x"] * 5).json()["error"]
    assert (oversize["type"], oversize["message"]) == (
        "invalid_request_error",
        "batch size 5 exceeds maximum 4",
    )


def test_openai_models_and_health(openai: StandinServer) -> None:
    models = call(openai, "GET", "/v1/models")
    assert models.status == 200
    assert [model["id"] for model in models.json()["data"]] == [MODEL]
    assert call(openai, "GET", "/health").status == 200
    openai.faults.healthy = False
    assert call(openai, "GET", "/v1/models").json()["error"]["type"] == "server_error"
    assert call(openai, "GET", "/health").status == 503


def test_openai_api_key_guards_v1_routes() -> None:
    with serve("openai", api_key=TOKEN) as server:
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]:
            denied = call(
                server, "POST", "/v1/embeddings", DIALECTS["openai"].payload(["x"]), headers=headers
            )
            assert denied.status == 401
            assert denied.json()["error"]["code"] == "invalid_api_key"
        assert call(server, "GET", "/v1/models").status == 401
        assert call(server, "GET", "/health").status == 200
        good = call(
            server, "POST", "/v1/embeddings", DIALECTS["openai"].payload(["x"]), headers=AUTH
        )
        assert openai_vectors(good) == expected("x")
        assert call(server, "GET", "/v1/models", headers=AUTH).status == 200


def test_openai_unknown_path_is_404(openai: StandinServer) -> None:
    answer = call(openai, "POST", "/embed", {"inputs": ["x"]})
    assert (answer.status, answer.json()) == (404, {"detail": "Not Found"})


# -- ollama -----------------------------------------------------------------------------------


def test_ollama_embed_body(ollama: StandinServer) -> None:
    answer = call(
        ollama, "POST", "/api/embed", {"model": MODEL, "input": "alpha", "truncate": True}
    )
    assert (answer.status, answer.json()) == (
        200,
        {"model": MODEL, "embeddings": expected("alpha"), "prompt_eval_count": 1},
    )


def test_ollama_root_and_tags(ollama: StandinServer) -> None:
    root = call(ollama, "GET", "/")
    assert (root.status, root.body) == (200, b"Ollama is running")
    tags = call(ollama, "GET", "/api/tags")
    assert [model["name"] for model in tags.json()["models"]] == [MODEL]
    ollama.faults.healthy = False
    assert call(ollama, "GET", "/api/tags").status == 503
    assert call(ollama, "GET", "/").status == 200


def test_ollama_model_names(ollama: StandinServer) -> None:
    unknown = embed(ollama, ["x"], model="other")
    assert (unknown.status, unknown.json()) == (
        404,
        {"error": 'model "other" not found, try pulling it first'},
    )
    assert embed(ollama, ["x"], model=f"{MODEL}:latest").status == 200
    assert embed(ollama, ["x"], model=f"{MODEL}:q4").status == 404
    missing = call(ollama, "POST", "/api/embed", {"input": ["x"]})
    assert (missing.status, missing.json()) == (400, {"error": "model is required"})


def test_ollama_rejects_a_bad_truncate(ollama: StandinServer) -> None:
    assert embed(ollama, ["x"], truncate="no").status == 400


def test_ollama_api_key_guards_posts() -> None:
    with serve("ollama", api_key=TOKEN) as server:
        denied = embed(server, ["x"])
        assert (denied.status, denied.json()) == (401, {"error": "invalid token"})
        assert call(server, "POST", "/api/nope", {}).status == 401
        assert call(server, "GET", "/api/tags").status == 200
        good = call(server, "POST", "/api/embed", DIALECTS["ollama"].payload(["x"]), headers=AUTH)
        assert good.status == 200


def test_ollama_unknown_path_is_404(ollama: StandinServer) -> None:
    answer = call(ollama, "GET", "/api/nope")
    assert (answer.status, answer.body) == (404, b"404 page not found")


# -- CLI --------------------------------------------------------------------------------------


def read_line(stream: Any, timeout_s: float) -> str:
    """Read one line from a pipe, failing the test if none arrives in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        pytest.fail(f"no line within {timeout_s}s")


CLI_OPTIONS: dict[str, list[str]] = {
    "hfspace": [],
    "tei": ["--tei-oversize-status", "413"],
    "openai": ["--no-openai-shuffle", "--no-openai-base64"],
    "ollama": [],
}


@pytest.mark.parametrize("protocol", sorted(CLI_OPTIONS))
def test_cli_serves_every_protocol(protocol: str) -> None:
    repo = Path(standin.__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "embedworker.standin", "--model", MODEL, "--dim", str(DIM)]
    options = ["--protocol", protocol, "--max-batch", "2", *CLI_OPTIONS[protocol]]
    proc = subprocess.Popen(
        [*command, *options], cwd=repo, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(read_line(proc.stdout, TIMEOUT_S).strip().rsplit(":", 1)[1])
        dialect = DIALECTS[protocol]
        assert call(port, "GET", dialect.health_path).status == 200
        payload = dialect.payload(["a", "b"]) | {"encoding_format": "base64"}
        answer = call(port, "POST", dialect.embed_path, payload)
        assert answer.status == 200
        assert dialect.vectors(answer) == expected("a", "b")
        if protocol == "openai":
            assert [item["index"] for item in answer.json()["data"]] == [0, 1]
        oversize = dialect.payload(["a", "b", "c"])
        assert call(port, "POST", dialect.embed_path, oversize).status == 413
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
