"""Protocol "openai": an OpenAI-compatible server (/v1/embeddings, /v1/models, /health)."""

from __future__ import annotations

import base64
import struct

from embedworker.standin.parsing import (
    Rejected,
    one_or_many,
    parse_json_object,
    validate_untasked,
)
from embedworker.standin.wire import (
    EmbedCall,
    Failure,
    Host,
    Parser,
    Renderer,
    Reply,
    Request,
    detail_reply,
    json_reply,
    word_count,
)


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


def handle_openai(server: Host, request: Request) -> Reply:
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
