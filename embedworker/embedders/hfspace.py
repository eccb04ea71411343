"""Studify's Hugging Face Spaces: POST /embed/batch, GET /healthz."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from embedworker.config import ModelSettings
from embedworker.embedders.base import check_vectors
from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.http import get_ok, make_client, post_json


class HfSpaceEmbedder:
    """The server adds the e5 "passage: " prefix itself from ``task``; it is not added here."""

    def __init__(self, name: str, settings: ModelSettings):
        self.name = name
        self.dimension = settings.dimension
        self.max_batch = settings.batch_size
        self._task = settings.task
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self._client = make_client(settings.url, settings.timeout_s, api_key)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        payload: dict[str, Any] = {"inputs": list(texts)}
        if self._task:
            payload["task"] = self._task
        body = await post_json(self._client, "/embed/batch", payload)
        if not isinstance(body, dict):
            raise ModelError(ErrorKind.MALFORMED, "malformed response: not a JSON object")
        return check_vectors(body.get("embeddings"), len(texts), self.dimension)

    async def healthy(self) -> bool:
        return await get_ok(self._client, "/healthz")

    async def aclose(self) -> None:
        await self._client.aclose()
