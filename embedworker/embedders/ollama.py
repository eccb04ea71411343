"""Ollama's native API: POST /api/embed, GET /api/tags."""

from __future__ import annotations

from typing import Any

import httpx

from embedworker.config import ModelSettings
from embedworker.embedders.errors import ErrorKind, ModelError


class OllamaWire:
    embed_path = "/api/embed"
    health_path = "/api/tags"
    rows_at: tuple[str, ...] | None = ("embeddings",)

    def __init__(self, settings: ModelSettings):
        assert settings.model is not None
        self._model = settings.model
        self._truncate = settings.truncate

    def payload(self, texts: list[str]) -> dict[str, Any]:
        return {"model": self._model, "input": texts, "truncate": self._truncate}

    def vectors(self, body: Any, count: int) -> Any:
        if not isinstance(body, dict):
            raise ModelError(ErrorKind.MALFORMED, "malformed response: not a JSON object")
        return body.get("embeddings")

    async def max_batch(self, client: httpx.AsyncClient) -> int | None:
        return None
