"""Hugging Face text-embeddings-inference: POST /embed, GET /health, GET /info.

TEI answers an oversized batch with 413 up to 1.8 and 422 from 1.9; /info's
max_client_batch_size caps batches before that happens.
"""

from __future__ import annotations

from typing import Any

import httpx

from embedworker.config import ModelSettings
from embedworker.embedders.client import AsksForLimit
from embedworker.embedders.http import get_json


class TeiWire(AsksForLimit):
    embed_path = "/embed"
    health_path = "/health"
    rows_at: tuple[str, ...] | None = ()

    def __init__(self, settings: ModelSettings):
        self._truncate = settings.truncate

    def payload(self, texts: list[str]) -> dict[str, Any]:
        return {"inputs": texts, "truncate": self._truncate}

    def vectors(self, body: Any, count: int) -> Any:
        return body

    async def max_batch(self, client: httpx.AsyncClient) -> int | None:
        info = await get_json(client, "/info")
        limit = info.get("max_client_batch_size") if isinstance(info, dict) else None
        return limit if isinstance(limit, int) and limit > 0 else None
