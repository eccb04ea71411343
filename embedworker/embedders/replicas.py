"""A model's servers: batches go to the one with the fewest requests in flight; a server that
cannot be reached is skipped until its health endpoint answers again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

import structlog

from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.http import ServerClient

log = structlog.get_logger(__name__)

PROBE_MIN_S = 0.5
PROBE_MAX_S = 30.0


class Replica:
    def __init__(self, url: str, client: ServerClient):
        self.url = url
        self.client = client
        self.in_flight = 0
        self.up = True

    @contextmanager
    def busy(self) -> Iterator[None]:
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


class ReplicaSet:
    """The servers of one model, with ``healthy(replica)`` telling whether one answers."""

    def __init__(
        self,
        model: str,
        urls: Sequence[str],
        connect: Callable[[str], ServerClient],
        healthy: Callable[[Replica], Awaitable[bool]],
    ):
        self._model = model
        self.replicas = [Replica(url, connect(url)) for url in urls]
        self._healthy = healthy
        self._probes: dict[str, asyncio.Task[None]] = {}

    def pick(self) -> Replica:
        """The reachable replica with the fewest requests in flight."""
        candidates = [replica for replica in self.replicas if replica.up]
        if not candidates:
            raise ModelError(ErrorKind.TRANSIENT, "no server of this model is reachable")
        return min(candidates, key=lambda replica: replica.in_flight)

    def mark_down(self, replica: Replica, reason: str) -> None:
        """Skip ``replica`` until its health endpoint answers; unless it is the only one."""
        if len(self.replicas) == 1 or not replica.up:
            return
        replica.up = False
        log.warning("replica.down", model=self._model, url=replica.url, reason=reason)
        self._probes[replica.url] = asyncio.create_task(self._probe(replica))

    async def any_healthy(self) -> bool:
        results = await asyncio.gather(*(self._healthy(replica) for replica in self.replicas))
        return any(results)

    async def _probe(self, replica: Replica) -> None:
        delay = PROBE_MIN_S
        while not await self._healthy(replica):
            await asyncio.sleep(delay)
            delay = min(delay * 2, PROBE_MAX_S)
        replica.up = True
        self._probes.pop(replica.url, None)
        log.info("replica.up", model=self._model, url=replica.url)

    async def aclose(self) -> None:
        for task in self._probes.values():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await replica.client.aclose()
