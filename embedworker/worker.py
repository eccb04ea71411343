"""The loop: claim a batch, embed it with every model, write the vectors, finish the rows."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import structlog

from embedworker.batching import embed_isolating
from embedworker.breaker import CircuitBreaker
from embedworker.db.connect import UNAVAILABLE_ERRORS, describe
from embedworker.db.queue import FinishCounts
from embedworker.domain import Batch, Outcome
from embedworker.embedders import Embedder, ErrorKind, ModelError
from embedworker.retry import backoff_delay
from embedworker.text import clean_text
from embedworker.waker import Waker

log = structlog.get_logger(__name__)

# How long an idle worker waits between polls while the LISTEN connection is not known to work.
DEGRADED_POLL_S = 2.0
EMPTY_TEXT_REASON = "empty text after cleaning: nothing to embed"
# An item that met a model outage comes back this soon; the breaker holds claims until then.
UNAVAILABLE_RETRY_S = 1.0


class QueuePort(Protocol):
    """What the worker needs of the queue (implemented by db.queue.QueueStore)."""

    async def claim(self, limit: int, token: UUID, lease_s: float) -> Batch: ...

    async def renew(self, token: UUID, lease_s: float) -> int: ...

    async def finish(
        self, token: UUID, outcomes: Sequence[Outcome], delays: Sequence[float]
    ) -> FinishCounts: ...

    async def release(self, tokens: Sequence[UUID]) -> int: ...


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    batch_size: int
    lease_timeout_s: float
    max_chars: int
    retry_delay_s: float
    retry_delay_max_s: float
    poll_interval_s: float


class Worker:
    """``concurrency`` coroutines that each claim and process one batch at a time."""

    def __init__(
        self,
        queue: QueuePort,
        embedders: Mapping[str, Embedder],
        options: WorkerOptions,
        waker: Waker,
        *,
        listening: asyncio.Event | None = None,
        rng: random.Random | None = None,
    ):
        self._queue = queue
        self._embedders = dict(embedders)
        self._options = options
        self._waker = waker
        self._listening = listening
        self._rng = rng or random.Random()
        self.breakers = {
            name: CircuitBreaker(name, embedder.healthy, on_close=waker.wake)
            for name, embedder in self._embedders.items()
        }
        self.in_flight: set[UUID] = set()
        self.batches = 0
        self.last_batch_at: float | None = None

    async def run(self, stopping: asyncio.Event, *, drain: bool = False) -> None:
        """Run the coroutines until ``stopping`` is set (or, with ``drain``, nothing is due)."""
        async with asyncio.TaskGroup() as group:
            for number in range(self._options.concurrency):
                group.create_task(self._loop(stopping, drain), name=f"worker-{number}")

    async def aclose(self) -> None:
        for breaker in self.breakers.values():
            await breaker.aclose()

    async def release_in_flight(self) -> int:
        """Give back the rows of batches that were interrupted."""
        tokens = list(self.in_flight)
        self.in_flight.clear()
        return await self._queue.release(tokens)

    async def _loop(self, stopping: asyncio.Event, drain: bool) -> None:
        failures = 0
        while not stopping.is_set():
            self._waker.clear()
            if any(breaker.is_open for breaker in self.breakers.values()):
                # Items stay queued, spending nothing, until every model answers again.
                await self._waker.wait(self._options.poll_interval_s)
                continue
            try:
                found = await self._claim_and_process()
                failures = 0
            except UNAVAILABLE_ERRORS as exc:
                failures += 1
                delay = min(0.5 * 2**failures, 30.0)
                log.warning("database.error", error=describe(exc), retry_in_s=delay)
                await self._waker.wait(delay)
                continue
            if found:
                continue
            if drain:
                return
            await self._waker.wait(self._idle_wait_s())

    def _idle_wait_s(self) -> float:
        if self._listening is not None and not self._listening.is_set():
            return min(DEGRADED_POLL_S, self._options.poll_interval_s)
        return self._options.poll_interval_s

    async def _claim_and_process(self) -> bool:
        token = uuid.uuid4()
        self.in_flight.add(token)
        try:
            batch = await self._queue.claim(
                self._options.batch_size, token, self._options.lease_timeout_s
            )
        except BaseException:
            self.in_flight.discard(token)
            raise
        if not batch.items:
            self.in_flight.discard(token)
            return False
        await self.process(batch)
        self.in_flight.discard(token)
        return True

    async def process(self, batch: Batch) -> FinishCounts:
        """Embed and finish one claimed batch."""
        started = time.monotonic()
        outcomes = [Outcome(item, clean_text(item.content_text, self._options.max_chars))
                    for item in batch.items]
        for outcome in outcomes:
            if not outcome.text:
                outcome.fail(EMPTY_TEXT_REASON, final=True)
        renewal = asyncio.create_task(self._renew_lease(batch.token))
        try:
            await asyncio.gather(
                *(self._embed_with(name, embedder, outcomes)
                  for name, embedder in self._embedders.items())
            )
            delays = [self._delay_for(outcome) for outcome in outcomes]
            counts = await self._finish(batch.token, outcomes, delays)
        finally:
            renewal.cancel()
        self._log_batch(batch, outcomes, counts, time.monotonic() - started)
        self.batches += 1
        self.last_batch_at = time.time()
        return counts

    async def _finish(
        self, token: UUID, outcomes: Sequence[Outcome], delays: Sequence[float]
    ) -> FinishCounts:
        """Write the batch's results, riding out a short database outage while the lease holds."""
        deadline = time.monotonic() + self._options.lease_timeout_s
        delay = 0.2
        while True:
            try:
                return await self._queue.finish(token, outcomes, delays)
            except UNAVAILABLE_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("batch.finish_retry", error=describe(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay *= 2

    async def _embed_with(self, name: str, embedder: Embedder, outcomes: Sequence[Outcome]) -> None:
        todo = [o for o in outcomes if o.text and name not in o.item.models_done]
        if not todo:
            return
        breaker = self.breakers[name]
        if breaker.is_open:
            for outcome in todo:
                outcome.fail(f"{name}: unavailable: {breaker.reason}", charge=False)
            return
        results = await embed_isolating(embedder, [o.text for o in todo])
        transient = [r for r in results if isinstance(r, ModelError)
                     and r.kind is ErrorKind.TRANSIENT]
        outage = bool(transient) and await breaker.confirm_outage(transient[0].reason)
        for outcome, result in zip(todo, results, strict=True):
            if not isinstance(result, ModelError):
                outcome.vectors[name] = result
            elif result.kind is ErrorKind.TRANSIENT and outage:
                outcome.fail(f"{name}: unavailable: {result.reason}", charge=False)
            else:
                outcome.fail(f"{name}: {result.reason}")

    def _delay_for(self, outcome: Outcome) -> float:
        if outcome.succeeded or outcome.final:
            return 0.0
        if outcome.charge:
            delay = backoff_delay(
                outcome.item.retry_count + 1,
                self._options.retry_delay_s,
                self._options.retry_delay_max_s,
                self._rng,
            )
        else:
            delay = UNAVAILABLE_RETRY_S
        self._waker.wake_at(time.monotonic() + delay)
        return delay

    async def _renew_lease(self, token: UUID) -> None:
        interval = self._options.lease_timeout_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._queue.renew(token, self._options.lease_timeout_s)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("lease.renew_failed", error=describe(exc))

    def _log_batch(
        self,
        batch: Batch,
        outcomes: Sequence[Outcome],
        counts: FinishCounts,
        seconds: float,
    ) -> None:
        for outcome in outcomes:
            if not outcome.succeeded:
                log.warning(
                    "item.failed",
                    id=outcome.item.id,
                    content_type=outcome.item.content_type,
                    content_id=outcome.item.content_id,
                    reason=outcome.error,
                    retry_count=outcome.item.retry_count + (1 if outcome.charge else 0),
                    final=outcome.final,
                )
        log.info(
            "batch.finished",
            size=len(batch.items),
            models=sorted(self._embedders),
            vectors=sum(len(o.vectors) for o in outcomes),
            duration_ms=round(seconds * 1000, 1),
            completed=counts.completed,
            retrying=counts.retrying,
            failed=counts.failed,
            lost=counts.lost,
        )
