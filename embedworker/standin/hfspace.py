"""Protocol "hfspace": Studify's Hugging Face Space (/embed, /embed/batch, /healthz)."""

from __future__ import annotations

from embedworker.standin.parsing import Rejected, parse_json_object, validate_call
from embedworker.standin.wire import (
    EmbedCall,
    Host,
    Parser,
    Reply,
    Request,
    detail_reply,
    json_reply,
)


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


def hfspace_health(server: Host) -> Reply:
    """GET /healthz."""
    if not server.faults.healthy:
        return json_reply(503, {"status": "error", "msg": "model not loaded"})
    return json_reply(200, {"status": "ok", "device": "cpu", "model": "SentenceTransformer"})


def handle_hfspace(server: Host, request: Request) -> Reply:
    """Route one request of the Studify hfspace protocol (errors use the default detail_error)."""
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
