"""The HTTP side every protocol shares: prefix, limits, replicas, retries, response checks.

A protocol only says where to POST, what to send, where the vectors are in the answer, and how
to tell that a server is healthy (the ``Wire`` interface).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import orjson

from embedworker.config import ModelSettings
from embedworker.embedders.base import Embeddings
from embedworker.embedders.decode import decode_vectors
from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.http import ServerClient, get_ok, with_retries
from embedworker.embedders.limits import RateLimiter
from embedworker.embedders.replicas import Replica, ReplicaSet


class Wire(Protocol):
    """One protocol's requests and answers."""

    embed_path: str
    health_path: str
    # Where the list of rows is in an answer, for the one-pass decoding (embedders.decode).
    rows_at: tuple[str, ...] | None

    def payload(self, texts: list[str]) -> dict[str, Any]: ...

    def vectors(self, body: Any, count: int) -> Any:
        """The list of vectors inside ``body`` (checked afterwards), or raise MALFORMED."""
        ...

    async def max_batch(self, client: httpx.AsyncClient) -> int | None:
        """The server's own batch limit, where it tells one."""
        ...


PROBE_TEXT = "embedworker probe"


class HttpEmbedder:
    """An Embedder for any ``Wire``: the worker sees no difference between protocols."""

    def __init__(self, name: str, settings: ModelSettings, wire: Wire):
        self.name = name
        self.dimension = settings.dimension
        self.max_batch = settings.batch_size
        self._wire = wire
        self._prefix = settings.prefix
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self._replicas = ReplicaSet(
            name,
            settings.urls,
            lambda url: ServerClient(url, settings.timeout_s, api_key),
            self._replica_healthy,
        )
        self._requests = asyncio.Semaphore(settings.max_concurrency)
        self._limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_inputs_per_min)
        self._limit_known = False

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        inputs = [self._prefix + text for text in texts]
        await self._learn_server_limit()
        if len(inputs) > self.max_batch:
            raise ModelError(
                ErrorKind.TOO_BIG,
                f"{len(inputs)} inputs exceed the server's batch limit of {self.max_batch}",
            )
        content = await with_retries(lambda: self._send(inputs))
        return decode_vectors(content, self._wire, len(inputs), self.dimension)

    async def healthy(self) -> bool:
        return await self._replicas.any_healthy()

    async def answers(self) -> bool:
        try:
            await self.embed([PROBE_TEXT])
        except ModelError:
            return False
        return True

    async def aclose(self) -> None:
        await self._replicas.aclose()

    async def _send(self, inputs: list[str]) -> bytes:
        """One request. Its slot of ``max_concurrency`` is given back as soon as the answer's
        headers arrive, so the next request goes out while this answer is still being read."""
        await self._limiter.acquire(len(inputs))
        await self._requests.acquire()
        held = True

        def release_slot() -> None:
            nonlocal held
            if held:
                held = False
                self._requests.release()

        try:
            replica = self._replicas.pick()
            with replica.busy():
                try:
                    return await replica.client.post(
                        self._wire.embed_path,
                        orjson.dumps(self._wire.payload(inputs)),
                        on_headers=release_slot,
                    )
                except ModelError as error:
                    if error.unreachable:
                        self._replicas.mark_down(replica, error.reason)
                    raise
        finally:
            release_slot()

    async def _replica_healthy(self, replica: Replica) -> bool:
        return await get_ok(replica.client.http, self._wire.health_path)

    async def _learn_server_limit(self) -> None:
        if self._limit_known:
            return
        limit = await self._wire.max_batch(self._replicas.pick().client.http)
        if limit is not None:
            self.max_batch = min(self.max_batch, limit)
            self._limit_known = True
        elif not isinstance(self._wire, AsksForLimit):
            self._limit_known = True


class AsksForLimit:
    """Marker: this protocol's server reports a batch limit, to be asked until it answers."""
