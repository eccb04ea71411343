"""Protocol "ollama": Ollama's native API (/api/embed, /api/tags, /)."""

from __future__ import annotations

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
    json_reply,
    word_count,
)


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


def handle_ollama(server: Host, request: Request) -> Reply:
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
