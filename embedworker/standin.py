"""Deterministic stand-in for the embedding model servers embedworker talks to.

For tests, the demo and the benchmarks; it is not a model. It speaks the HTTP protocol of the real
servers (PROTOCOLS: Studify's hfspace, text-embeddings-inference, OpenAI-compatible
/v1/embeddings and Ollama's /api/embed) and answers every input with a unit-norm vector derived
from a hash of the model name and the text, so results are reproducible without loading any model
and the vectors carry no meaning. Faults (latency, error statuses, rejected inputs, malformed
answers, outages) can be injected at run time through ``StandinServer.faults``, ``down()`` and
``up()``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import random
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal

TASK_PREFIXES: dict[str, str] = {"passage": "passage: ", "query": "query: "}
MALFORMS: frozenset[str] = frozenset({"wrong_dim", "nan", "wrong_count", "not_json"})
RANDOM_ERROR_STATUSES: tuple[int, ...] = (500, 503, 429)
POISON_DETAIL = "input rejected: contains forbidden content"
NOT_JSON_BODY = b'{"embeddings": [[0.125, -0.5'


def deterministic_vector(model: str, text: str, dim: int) -> list[float]:
    """Return a unit-norm vector of `dim` floats that depends only on `model` and `text`."""
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    uniform = random.Random(int.from_bytes(digest[:8], "big")).random
    out: list[float] = []
    push = out.append
    # Box-Muller gives two gaussians per pair of uniforms; ~3x faster than Random.gauss.
    for _ in range((dim + 1) // 2):
        radius = math.sqrt(-2.0 * math.log(1.0 - uniform()))
        angle = math.tau * uniform()
        push(radius * math.cos(angle))
        push(radius * math.sin(angle))
    del out[dim:]
    scale = 1.0 / math.hypot(*out)
    return [x * scale for x in out]


@dataclass
class Faults:
    """Faults injected into embed requests; tests mutate these fields while the server runs.

    `malform` is None or one of MALFORMS: "wrong_dim" (every vector one component short), "nan"
    (first component of the first vector is NaN), "wrong_count" (last vector missing) or
    "not_json" (a truncated body); "count" is the number of vectors sent, "dim" the configured one.
    Random errors (`error_rate`) come from a generator seeded with `seed`, so a run is
    reproducible for a given request order.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    poison_marker: str | None = None
    malform: str | None = None
    healthy: bool = True
    seed: int = 0
    _pending: list[tuple[int, float | None]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "malform" and value is not None and value not in MALFORMS:
            raise ValueError(f"unknown malform {value!r}; known: {sorted(MALFORMS)}")
        super().__setattr__(name, value)

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """Make the next `n` embed requests answer `status` (with Retry-After when given)."""
        with self._lock:
            self._pending.extend([(status, retry_after)] * n)

    def clear(self) -> None:
        """Remove every fault and reseed the random error generator."""
        with self._lock:
            self.latency_s = 0.0
            self.error_rate = 0.0
            self.poison_marker = None
            self.malform = None
            self.healthy = True
            self._pending.clear()
            self._rng = random.Random(self.seed)

    def take_injected(self) -> tuple[int, float | None] | None:
        """Consume the injected failure due for this request: (status, retry_after) or None."""
        with self._lock:
            if self._pending:
                return self._pending.pop(0)
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                return self._rng.choice(RANDOM_ERROR_STATUSES), None
            return None


@dataclass(frozen=True)
class Request:
    """One HTTP request as seen by a protocol handler."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, raw body and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    """Encode `payload` as JSON (NaN allowed, as a buggy server would send it)."""
    return Reply(status, json.dumps(payload).encode(), headers or {})


def detail_reply(status: int, detail: str, headers: dict[str, str] | None = None) -> Reply:
    """The FastAPI-style error answer {"detail": ...}."""
    return json_reply(status, {"detail": detail}, headers)


class Rejected(Exception):
    """A request that fails validation; carries the status and detail to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class EmbedCall:
    """A validated embed request: raw inputs, the optional task, whether to send base64 vectors."""

    inputs: list[str]
    task: str | None
    base64: bool = False


# What went wrong in the embed pipeline, so each protocol can word its error answer.
Failure = Literal["unauthorized", "unhealthy", "injected", "rejected", "poison"]

Parser = Callable[[bytes], EmbedCall]
Renderer = Callable[[EmbedCall, list[list[float]], int], object]
ErrorRenderer = Callable[[Failure, int, str, dict[str, str]], Reply]


def detail_error(failure: Failure, status: int, message: str, headers: dict[str, str]) -> Reply:
    """hfspace errors: FastAPI's {"detail": ...} whatever the failure."""
    return detail_reply(status, message, headers)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body or reject with 400."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "body must be a JSON object")
    return payload


def validate_call(inputs: list[str], task: object, max_batch: int) -> EmbedCall:
    """Apply the size, task and empty-input rules shared by every protocol."""
    if len(inputs) > max_batch:
        raise Rejected(413, f"batch too large: {len(inputs)} > {max_batch}")
    if not inputs:
        raise Rejected(422, "inputs is empty")
    if task is not None and (not isinstance(task, str) or task not in TASK_PREFIXES):
        raise Rejected(422, f"unknown task: {task!r}")
    for index, text in enumerate(inputs):
        if not text.strip():
            raise Rejected(422, f"input {index} is empty")
    return EmbedCall(inputs, task)


def one_or_many(value: object, name: str, status: int) -> list[str]:
    """A string or a list of strings as a list, or reject with `status`."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(text, str) for text in value):
        return value
    raise Rejected(status, f"{name} must be a string or a list of strings")


def validate_untasked(
    inputs: list[str], max_batch: int, *, oversize: Rejected, empty: Rejected
) -> EmbedCall:
    """validate_call for protocols without tasks, failing with the protocol's own rejections."""
    if len(inputs) > max_batch:
        raise oversize
    try:
        return validate_call(inputs, None, max_batch)
    except Rejected:
        raise empty from None  # with no task and the size checked, only emptiness is left


def word_count(texts: list[str]) -> int:
    """A stand-in token count: whitespace-separated words, at least one per input."""
    return sum(max(1, len(text.split())) for text in texts)


def malformed(vectors: list[list[float]], malform: str) -> list[list[float]]:
    """Return `vectors` damaged the way `malform` says (not_json is handled by the caller)."""
    if malform == "wrong_dim":
        return [vector[:-1] for vector in vectors]
    if malform == "nan":
        return [[math.nan, *vectors[0][1:]], *vectors[1:]]
    if malform == "wrong_count":
        return vectors[:-1]
    raise ValueError(f"unknown malform: {malform!r}")


class StandinServer:
    """A threaded HTTP stand-in model server with injectable faults and request counters."""

    def __init__(
        self,
        model: str = "e5_small",
        dim: int = 384,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_batch: int = 64,
        api_key: str | None = None,
        protocol: str = "hfspace",
        tei_oversize_status: int = 422,
        openai_shuffle: bool = True,
        openai_base64: bool = True,
    ) -> None:
        """`tei_oversize_status` answers an oversize TEI batch (413 or 422, as TEI versions
        differ); `openai_shuffle` sends /v1/embeddings data in reverse order of index;
        `openai_base64=False` ignores encoding_format and always sends float lists."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
        if tei_oversize_status not in (413, 422):
            raise ValueError(f"tei_oversize_status must be 413 or 422, not {tei_oversize_status}")
        self.model = model
        self.dim = dim
        self.host = host
        self.max_batch = max_batch
        self.api_key = api_key
        self.protocol = protocol
        self.tei_oversize_status = tei_oversize_status
        self.openai_shuffle = openai_shuffle
        self.openai_base64 = openai_base64
        self.faults = Faults()
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests = 0
        self._inputs_embedded = 0
        self._batch_sizes: list[int] = []
        self._texts: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> StandinServer:
        """Start listening (on the same port as before if it was started already)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._port), _Handler, self)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"standin-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.drop_connections()
        if thread is not None:
            thread.join()

    def down(self) -> None:
        """Simulate an outage: connections are refused until `up()`."""
        self.stop()

    def up(self) -> None:
        """End an outage: listen again on the same port."""
        self.start()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (0 before the first start when constructed with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL clients should use, e.g. http://127.0.0.1:8123."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self._port}"

    @property
    def is_up(self) -> bool:
        """Whether the server is listening."""
        return self._httpd is not None

    # -- counters -------------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Embed POSTs received, whatever their answer."""
        with self._lock:
            return self._requests

    @property
    def inputs_embedded(self) -> int:
        """Inputs answered with a 200 (malformed answers included)."""
        with self._lock:
            return self._inputs_embedded

    @property
    def batch_sizes(self) -> list[int]:
        """Input count of every embed request that passed validation."""
        with self._lock:
            return list(self._batch_sizes)

    @property
    def texts(self) -> list[str]:
        """Raw (unprefixed) inputs of every embed request that passed validation, in order."""
        with self._lock:
            return list(self._texts)

    def reset_counters(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests = 0
            self._inputs_embedded = 0
            self._batch_sizes.clear()
            self._texts.clear()

    # -- request handling -----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one request with the configured protocol."""
        return PROTOCOLS[self.protocol](self, request)

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the expected bearer token (always true without one)."""
        if self.api_key is None:
            return True
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def run_embed(
        self,
        request: Request,
        parse: Parser,
        render: Renderer,
        *,
        error: ErrorRenderer = detail_error,
        poison_status: int = 422,
    ) -> Reply:
        """Run one embed POST through the fault pipeline, then embed and render the answer.

        `error` words every failure the protocol's way; a poisoned batch answers `poison_status`.
        """
        with self._lock:
            self._requests += 1
        early = self._early_fault(request, error)
        if early is not None:
            return early
        try:
            call = parse(request.body)
        except Rejected as exc:
            return error("rejected", exc.status, exc.detail, {})
        self._record(call)
        marker = self.faults.poison_marker
        if marker is not None and any(marker in text for text in call.inputs):
            return error("poison", poison_status, POISON_DETAIL, {})
        return self._embed_answer(call, render)

    def _early_fault(self, request: Request, error: ErrorRenderer) -> Reply | None:
        """Auth, health, injected statuses and latency: everything before validation."""
        if not self.authorized(request):
            return error("unauthorized", 401, "invalid token", {})
        if not self.faults.healthy:
            return error("unhealthy", 503, "model loading", {})
        injected = self.faults.take_injected()
        if injected is not None:
            status, retry_after = injected
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return error("injected", status, f"injected {status}", headers)
        if self.faults.latency_s > 0:
            self._stopping.wait(self.faults.latency_s)
        return None

    def _record(self, call: EmbedCall) -> None:
        with self._lock:
            self._batch_sizes.append(len(call.inputs))
            self._texts.extend(call.inputs)

    def _embed_answer(self, call: EmbedCall, render: Renderer) -> Reply:
        malform = self.faults.malform
        if malform == "not_json":
            self._count_embedded(len(call.inputs))
            return Reply(200, NOT_JSON_BODY)
        prefix = TASK_PREFIXES[call.task] if call.task is not None else ""
        vectors = [
            deterministic_vector(self.model, prefix + text, self.dim) for text in call.inputs
        ]
        if malform is not None:
            vectors = malformed(vectors, malform)
        self._count_embedded(len(call.inputs))
        return json_reply(200, render(call, vectors, self.dim))

    def _count_embedded(self, n: int) -> None:
        with self._lock:
            self._inputs_embedded += n


# -- protocol: hfspace ------------------------------------------------------------------------


def hfspace_parse_batch(max_batch: int) -> Parser:
    """Parser for POST /embed/batch: {"inputs": [str, ...], "task"?: str}."""

    def parse(body: bytes) -> EmbedCall:
        payload = parse_json_object(body)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(text, str) for text in inputs):
            raise Rejected(400, "inputs must be a list of strings")
        return validate_call(inputs, payload.get("task"), max_batch)

    return parse


def hfspace_parse_single(body: bytes) -> EmbedCall:
    """Parse POST /embed: {"input": str, "task"?: str}."""
    payload = parse_json_object(body)
    text = payload.get("input")
    if not isinstance(text, str):
        raise Rejected(400, "input must be a string")
    return validate_call([text], payload.get("task"), max_batch=1)


def hfspace_render_batch(call: EmbedCall, vectors: list[list[float]], dim: int) -> object:
    """Body of a /embed/batch answer."""
    return {"embeddings": vectors, "count": len(vectors), "dim": dim}


def hfspace_render_single(call: EmbedCall, vectors: list[list[float]], dim: int) -> object:
    """Body of an /embed answer (an empty embedding when malform dropped the vector)."""
    return {"embedding": vectors[0] if vectors else [], "dim": dim}


def hfspace_health(server: StandinServer) -> Reply:
    """GET /healthz."""
    if not server.faults.healthy:
        return json_reply(503, {"status": "error", "msg": "model not loaded"})
    return json_reply(200, {"status": "ok", "device": "cpu", "model": "SentenceTransformer"})


def handle_hfspace(server: StandinServer, request: Request) -> Reply:
    """Route one request of the Studify hfspace protocol."""
    route = (request.method, request.path)
    if route == ("GET", "/"):
        return json_reply(200, {"status": "running", "model": server.model})
    if route == ("GET", "/healthz"):
        return hfspace_health(server)
    if route == ("POST", "/embed/batch"):
        parse = hfspace_parse_batch(server.max_batch)
        return server.run_embed(request, parse, hfspace_render_batch)
    if route == ("POST", "/embed"):
        return server.run_embed(request, hfspace_parse_single, hfspace_render_single)
    if request.method == "POST" and not server.authorized(request):
        return detail_reply(401, "invalid token")
    return detail_reply(404, "Not Found")


# -- protocol: tei (Hugging Face text-embeddings-inference) ----------------------------------

TEI_MAX_BATCH_TOKENS = 16384
TEI_MAX_INPUT_LENGTH = 512
TEI_ERROR_TYPES: dict[Failure, str] = {
    "unhealthy": "Unhealthy",
    "rejected": "Validation",
    "poison": "Validation",
}


def tei_error(failure: Failure, status: int, message: str, headers: dict[str, str]) -> Reply:
    """TEI errors: {"error": ..., "error_type": ...}; a bad token gets an empty 401."""
    if failure == "unauthorized":
        return Reply(401, b"", headers, content_type="text/plain")
    if failure == "injected":
        error_type = "Overloaded" if status in (429, 503) else "Backend"
    else:
        error_type = TEI_ERROR_TYPES[failure]
    return json_reply(status, {"error": message, "error_type": error_type}, headers)


def tei_parser(max_batch: int, oversize_status: int) -> Parser:
    """Parser for POST /embed: {"inputs": str | [str], "truncate"?: bool, "normalize"?: bool}."""

    def parse(body: bytes) -> EmbedCall:
        payload = parse_json_object(body)
        inputs = one_or_many(payload.get("inputs"), "inputs", 422)
        for flag in ("truncate", "normalize"):
            if not isinstance(payload.get(flag, False), bool):
                raise Rejected(422, f"{flag} must be a boolean")
        oversize = f"batch size {len(inputs)} > maximum allowed batch size {max_batch}"
        return validate_untasked(
            inputs,
            max_batch,
            oversize=Rejected(oversize_status, oversize),
            empty=Rejected(422, "`inputs` cannot be empty"),
        )

    return parse


def tei_render(call: EmbedCall, vectors: list[list[float]], dim: int) -> object:
    """Body of a TEI /embed answer: a bare list of vectors, even for a single string."""
    return vectors


def tei_info(server: StandinServer) -> dict[str, object]:
    """Body of GET /info."""
    return {
        "model_id": server.model,
        "model_sha": None,
        "model_dtype": "float32",
        "model_type": {"embedding": {"pooling": "mean"}},
        "max_concurrent_requests": 512,
        "max_input_length": TEI_MAX_INPUT_LENGTH,
        "max_batch_tokens": TEI_MAX_BATCH_TOKENS,
        "max_batch_requests": None,
        "max_client_batch_size": server.max_batch,
        "auto_truncate": False,
        "tokenization_workers": 1,
        "version": "standin",
    }


def handle_tei(server: StandinServer, request: Request) -> Reply:
    """Route one request of the TEI protocol (a set api_key guards every route, as in TEI)."""
    route = (request.method, request.path)
    if route == ("POST", "/embed"):
        parse = tei_parser(server.max_batch, server.tei_oversize_status)
        return server.run_embed(request, parse, tei_render, error=tei_error)
    if not server.authorized(request):
        return tei_error("unauthorized", 401, "invalid token", {})
    if route == ("GET", "/health"):
        if not server.faults.healthy:
            return tei_error("unhealthy", 503, "unhealthy", {})
        return Reply(200, b"", content_type="text/plain")
    if route == ("GET", "/info"):
        return json_reply(200, tei_info(server))
    return Reply(404, b"", content_type="text/plain")


# -- protocol: openai (OpenAI-compatible /v1/embeddings) -------------------------------------


def openai_error(failure: Failure, status: int, message: str, headers: dict[str, str]) -> Reply:
    """OpenAI errors: {"error": {"message", "type", "param", "code"}}."""
    if status == 401:
        kind, code = "invalid_request_error", "invalid_api_key"
    elif status == 404:
        kind, code = "invalid_request_error", "model_not_found"
    elif status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", None
    else:
        kind, code = "invalid_request_error", None
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_reply(status, body, headers)


def openai_parser(model: str, max_batch: int, allow_base64: bool) -> Parser:
    """Parser for POST /v1/embeddings: {"model", "input": str | [str], "encoding_format"?}."""

    def parse(body: bytes) -> EmbedCall:
        payload = parse_json_object(body)
        requested = payload.get("model")
        if requested != model:
            name = requested if isinstance(requested, str) else ""
            raise Rejected(404, f"The model `{name}` does not exist")
        inputs = one_or_many(payload.get("input"), "input", 400)
        encoding = payload.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise Rejected(400, f"encoding_format must be 'float' or 'base64', not {encoding!r}")
        call = validate_untasked(
            inputs,
            max_batch,
            oversize=Rejected(413, f"batch size {len(inputs)} exceeds maximum {max_batch}"),
            empty=Rejected(400, "input cannot be empty"),
        )
        return EmbedCall(call.inputs, None, base64=allow_base64 and encoding == "base64")

    return parse


def float32_base64(vector: list[float]) -> str:
    """A vector as OpenAI's base64 encoding: little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def openai_renderer(model: str, shuffle: bool) -> Renderer:
    """Renderer for /v1/embeddings; `shuffle` reverses the data so clients must sort by index."""

    def render(call: EmbedCall, vectors: list[list[float]], dim: int) -> object:
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": float32_base64(vector) if call.base64 else vector,
            }
            for index, vector in enumerate(vectors)
        ]
        if shuffle:
            data.reverse()
        tokens = word_count(call.inputs)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return render


def handle_openai(server: StandinServer, request: Request) -> Reply:
    """Route one request of the OpenAI protocol (a set api_key guards /v1/*, as in vLLM)."""
    route = (request.method, request.path)
    if route == ("POST", "/v1/embeddings"):
        parse = openai_parser(server.model, server.max_batch, server.openai_base64)
        render = openai_renderer(server.model, server.openai_shuffle)
        return server.run_embed(request, parse, render, error=openai_error, poison_status=400)
    if request.path.startswith("/v1/") and not server.authorized(request):
        return openai_error("unauthorized", 401, "invalid token", {})
    if route == ("GET", "/v1/models"):
        if not server.faults.healthy:
            return openai_error("unhealthy", 503, "model loading", {})
        model = {"id": server.model, "object": "model", "created": 0, "owned_by": "standin"}
        return json_reply(200, {"object": "list", "data": [model]})
    if route == ("GET", "/health"):
        return Reply(200 if server.faults.healthy else 503, b"", content_type="text/plain")
    return detail_reply(404, "Not Found")


# -- protocol: ollama (Ollama's native API) --------------------------------------------------


def ollama_error(failure: Failure, status: int, message: str, headers: dict[str, str]) -> Reply:
    """Ollama errors: {"error": ...}."""
    return json_reply(status, {"error": message}, headers)


def ollama_tagged(name: str) -> str:
    """`name` with Ollama's implicit ":latest" tag when it has none."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def ollama_parser(model: str, max_batch: int) -> Parser:
    """Parser for POST /api/embed: {"model", "input": str | [str], "truncate"?: bool}."""

    def parse(body: bytes) -> EmbedCall:
        payload = parse_json_object(body)
        requested = payload.get("model")
        if not isinstance(requested, str) or not requested:
            raise Rejected(400, "model is required")
        if ollama_tagged(requested) != ollama_tagged(model):
            raise Rejected(404, f'model "{requested}" not found, try pulling it first')
        inputs = one_or_many(payload.get("input"), "input", 400)
        if not isinstance(payload.get("truncate", True), bool):
            raise Rejected(400, "truncate must be a boolean")
        return validate_untasked(
            inputs,
            max_batch,
            oversize=Rejected(413, f"batch size {len(inputs)} exceeds maximum {max_batch}"),
            empty=Rejected(400, "input cannot be empty"),
        )

    return parse


def ollama_renderer(model: str) -> Renderer:
    """Renderer for /api/embed."""

    def render(call: EmbedCall, vectors: list[list[float]], dim: int) -> object:
        return {"model": model, "embeddings": vectors, "prompt_eval_count": word_count(call.inputs)}

    return render


def handle_ollama(server: StandinServer, request: Request) -> Reply:
    """Route one request of the Ollama protocol."""
    route = (request.method, request.path)
    if route == ("POST", "/api/embed"):
        parse = ollama_parser(server.model, server.max_batch)
        render = ollama_renderer(server.model)
        return server.run_embed(request, parse, render, error=ollama_error, poison_status=400)
    if request.method == "POST" and not server.authorized(request):
        return ollama_error("unauthorized", 401, "invalid token", {})
    if route == ("GET", "/"):
        return Reply(200, b"Ollama is running", content_type="text/plain; charset=utf-8")
    if route == ("GET", "/api/tags"):
        if not server.faults.healthy:
            return ollama_error("unhealthy", 503, "model loading", {})
        return json_reply(200, {"models": [{"name": server.model, "model": server.model}]})
    return Reply(404, b"404 page not found", content_type="text/plain")


ProtocolHandler = Callable[[StandinServer, Request], Reply]
PROTOCOLS: dict[str, ProtocolHandler] = {
    "hfspace": handle_hfspace,
    "tei": handle_tei,
    "openai": handle_openai,
    "ollama": handle_ollama,
}


# -- HTTP plumbing ----------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its StandinServer and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], standin: StandinServer
    ) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.dropped = False
        super().__init__(address, handler)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection, or drop it at once if the server is already down."""
        with self.connections_lock:
            if not self.dropped:
                self.connections.add(connection)
                return
        _hang_up(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection that has been closed."""
        with self.connections_lock:
            self.connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down every kept-alive connection so clients see the outage at once."""
        with self.connections_lock:
            self.dropped = True
            connections = list(self.connections)
        for connection in connections:
            _hang_up(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may have closed it already
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the StandinServer and writes the Reply."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        """The request body, or None when its framing is unsupported (the connection closes)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            return None
        return self.rfile.read(int(length))

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(detail_reply(411, "a valid Content-Length is required"))
            return
        path = self.path.split("?", 1)[0]
        request = Request(self.command, path, self.headers, body)
        try:
            reply = self.server.standin.handle(request)
        except Exception as exc:  # a stand-in bug must not hang the client
            reply = detail_reply(500, f"stand-in error: {exc!r}")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""


# -- CLI --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of `python -m embedworker.standin`."""
    parser = argparse.ArgumentParser(
        prog="python -m embedworker.standin",
        description="Deterministic stand-in embedding model server (not a model).",
    )
    parser.add_argument("--model", default="e5_small")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="hfspace")
    parser.add_argument("--tei-oversize-status", type=int, choices=(413, 422), default=422)
    parser.add_argument("--openai-shuffle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--openai-base64", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print the URL first so callers know the port."""
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = StandinServer(
        args.model,
        args.dim,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        api_key=args.api_key,
        protocol=args.protocol,
        tei_oversize_status=args.tei_oversize_status,
        openai_shuffle=args.openai_shuffle,
        openai_base64=args.openai_base64,
    )
    server.faults.latency_s = args.latency_ms / 1000.0
    with server:
        print(f"listening on {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
