"""Studify's Hugging Face Spaces: POST /embed/batch, GET /healthz.

The server adds the e5 "passage: " prefix itself from ``task``; it is not added here.
"""

from __future__ import annotations

from typing import Any

import httpx

from embedworker.config import ModelSettings
from embedworker.embedders.errors import ErrorKind, ModelError


class HfSpaceWire:
    embed_path = "/embed/batch"
    health_path = "/healthz"
    rows_at: tuple[str, ...] | None = ("embeddings",)

    def __init__(self, settings: ModelSettings):
        self._task = settings.task

    def payload(self, texts: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"inputs": texts}
        if self._task:
            payload["task"] = self._task
        return payload

    def vectors(self, body: Any, count: int) -> Any:
        if not isinstance(body, dict):
            raise ModelError(ErrorKind.MALFORMED, "malformed response: not a JSON object")
        return body.get("embeddings")

    async def max_batch(self, client: httpx.AsyncClient) -> int | None:
        return None
