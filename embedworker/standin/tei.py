"""Protocol "tei": Hugging Face text-embeddings-inference (/embed, /health, /info)."""

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
    Reply,
    Request,
    json_reply,
)

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


def tei_info(server: Host) -> dict[str, object]:
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


def handle_tei(server: Host, request: Request) -> Reply:
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
