"""An embedder whose client is built when it is first needed.

The daemon gives its workers these, so that it can claim its first batch before it imports
the clients (httpx, numpy, the decoders) and builds them; it builds them right after that claim
(``client()``), and a model that is used earlier builds its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from embedworker.embedders import build_embedder

if TYPE_CHECKING:
    from embedworker.config import ModelSettings
    from embedworker.embedders.base import Embedder, Embeddings


class DeferredEmbedder:
    """The Embedder of ``settings``, built by the first call that needs it."""

    def __init__(self, name: str, settings: ModelSettings):
        self.name = name
        self.dimension = settings.dimension
        self._settings = settings
        self._client: Embedder | None = None

    def client(self) -> Embedder:
        """The model's client, built now if it was not yet."""
        if self._client is None:
            self._client = build_embedder(self.name, self._settings)
        return self._client

    @property
    def max_batch(self) -> int:
        return self.client().max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        self.client().max_batch = value

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        return await self.client().embed(texts)

    async def healthy(self) -> bool:
        return await self.client().healthy()

    async def answers(self) -> bool:
        return await self.client().answers()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
