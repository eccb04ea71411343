"""The loop: claim a batch, embed it with every model, write the vectors, finish the rows."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

import structlog

from embedworker.batching import embed_isolating
from embedworker.breaker import CircuitBreaker
from embedworker.db.connect import UNAVAILABLE_ERRORS, describe
from embedworker.db.queue import FinishCounts
from embedworker.domain import Batch, Outcome
from embedworker.embedders import ErrorKind, ModelError
from embedworker.retry import backoff_delay
from embedworker.text import clean_text
from embedworker.waker import Waker

if TYPE_CHECKING:
    from embedworker.embedders import Embedder

log = structlog.get_logger(__name__)

# How long an idle worker waits between polls while the LISTEN connection is not known to work.
DEGRADED_POLL_S = 2.0
EMPTY_TEXT_REASON = "empty text after cleaning: nothing to embed"
# An item that met a model outage comes back this soon; the breaker holds claims until then.
UNAVAILABLE_RETRY_S = 1.0
# A busy coroutine that shows no progress (no lease renewal, no new batch) for this long is wedged.
WEDGED_AFTER_S = 120.0
# `drain` waits for retries falling due within this long, and leaves later ones queued.
DRAIN_RETRY_HORIZON_S = 2 * UNAVAILABLE_RETRY_S
# Errors that say nothing about the item when the model is known to be unavailable.
_OUTAGE_KINDS = (ErrorKind.TRANSIENT, ErrorKind.REFUSED)
# How long shutdown waits for a claim already sent to the database.
CLAIM_SETTLE_S = 10.0


class QueuePort(Protocol):
    """What the worker needs of the queue (implemented by db.queue.QueueStore)."""

    async def claim(self, limit: int, token: UUID, lease_s: float) -> Batch: ...

    async def renew(self, token: UUID, lease_s: float) -> int: ...

    async def finish(
        self, token: UUID, outcomes: Sequence[Outcome], delays: Sequence[float]
    ) -> FinishCounts: ...

    async def release(self, tokens: Sequence[UUID]) -> int: ...

    async def waited_for(self) -> list[str]: ...

    async def release_waiting(self, down: Sequence[str]) -> int: ...


class WorkerMetrics(Protocol):
    """The numbers the worker reports (implemented by ops.metrics.Metrics)."""

    def batch_finished(
        self, size: int, completed: int, retrying: int, failed: int, seconds: float
    ) -> None: ...

    def model_request(self, model: str, seconds: float, error_kind: str | None) -> None: ...

    def model_available(self, model: str, up: bool) -> None: ...

    def wakeup(self, reason: str) -> None: ...


class NoMetrics:
    def batch_finished(
        self, size: int, completed: int, retrying: int, failed: int, seconds: float
    ) -> None:
        pass

    def model_request(self, model: str, seconds: float, error_kind: str | None) -> None:
        pass

    def model_available(self, model: str, up: bool) -> None:
        pass

    def wakeup(self, reason: str) -> None:
        pass


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    batch_size: int
    lease_timeout_s: float
    max_chars: int
    retry_delay_s: float
    retry_delay_max_s: float
    poll_interval_s: float
    # How long `drain` waits for a model that is unavailable before it gives up.
    drain_outage_wait_s: float


@dataclass(frozen=True)
class Model:
    """One enabled model as the worker uses it: its client, its circuit breaker, and the
    version its vectors are recorded as."""

    name: str
    embedder: Embedder
    breaker: CircuitBreaker
    version: str


@dataclass(frozen=True)
class Runtime:
    """Everything a batch uses, fixed from its claim to its finish; a reload swaps it whole."""

    queue: QueuePort
    models: Mapping[str, Model]
    options: WorkerOptions


class Worker:
    """``concurrency`` coroutines that each claim and process one batch at a time."""

    def __init__(
        self,
        runtime: Runtime,
        waker: Waker,
        *,
        listening: Callable[[], bool] | None = None,
        metrics: WorkerMetrics | None = None,
        rng: random.Random | None = None,
    ):
        self.runtime = runtime
        self._waker = waker
        self._listening = listening
        self._metrics = metrics or NoMetrics()
        self._rng = rng or random.Random()
        self._group: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()
        self._drain = False
        # coroutine number -> monotonic time of its last progress, or None while idle
        self._busy_since: dict[int, float | None] = {}
        self._all_loops_ended = asyncio.Event()
        # Release passes run one at a time; _released counts the rows they made claimable.
        self._release_lock = asyncio.Lock()
        self._released = 0
        self.in_flight: set[UUID] = set()
        # Set once a claim has been answered or has failed: the daemon starts the rest then.
        self.claimed = asyncio.Event()

    async def run(self, stopping: asyncio.Event, *, drain: bool = False) -> None:
        """Run the coroutines until ``stopping`` is set (or, with ``drain``, nothing is due)."""
        self._stopping, self._drain = stopping, drain
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._spawn_loops()
            releasing = group.create_task(self._release_waiting_loop(), name="release-waiting")
            await self._all_loops_ended.wait()
            releasing.cancel()
        self._group = None

    def reconfigure(self, runtime: Runtime) -> None:
        """Use ``runtime`` for every batch claimed from now on; in-flight batches keep theirs."""
        self.runtime = runtime
        self._spawn_loops()
        self._waker.model_back.set()  # a removed model's parked items are released
        self._waker.wake_all()

    def wedged(self) -> list[int]:
        """Coroutines busy for WEDGED_AFTER_S without any progress."""
        now = time.monotonic()
        return [number for number, since in self._busy_since.items()
                if since is not None and now - since > WEDGED_AFTER_S]

    async def release_in_flight(self) -> int:
        """Give back the rows of batches that were interrupted."""
        tokens = list(self.in_flight)
        self.in_flight.clear()
        return await self.runtime.queue.release(tokens)

    def _spawn_loops(self) -> None:
        if self._group is None:
            return
        for number in range(self.runtime.options.concurrency):
            if number not in self._busy_since:
                self._busy_since[number] = None
                self._group.create_task(self._loop(number), name=f"worker-{number}")

    async def _loop(self, number: int) -> None:
        try:
            await self._work(number)
        finally:
            del self._busy_since[number]
            if not self._busy_since:
                self._all_loops_ended.set()

    async def _release_waiting_loop(self) -> None:
        """Items parked for a model are released when it answers again (its breaker closes),
        at start, and every poll: a copy that died while a model was down leaves its parked
        items to the others."""
        await self.claimed.wait()  # the first claim goes first, on the pool's open connection
        while not self._stopping.is_set():
            self._waker.model_back.clear()
            wait_s = self.runtime.options.poll_interval_s
            try:
                await self._release_waiting(self.runtime)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("waiting.release_failed", error=describe(exc))
                wait_s = min(wait_s, DEGRADED_POLL_S)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._waker.model_back.wait(), wait_s)

    async def _release_waiting(self, runtime: Runtime) -> int:
        async with self._release_lock:
            # A model this copy has not seen fail is asked first (its health check), so that
            # the items another copy parked for it are not claimed only to be parked again.
            for name in await runtime.queue.waited_for():
                model = runtime.models.get(name)
                if model is not None and not model.breaker.is_open:
                    await model.breaker.confirm_outage("unhealthy while items wait for it")
            down = sorted(name for name, model in runtime.models.items()
                          if model.breaker.is_open)
            released = await runtime.queue.release_waiting(down)
            self._released += released
        if released:
            log.info("waiting.released", items=released, still_down=down)
            self._waker.wake()
        return released

    async def _work(self, number: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            runtime = self.runtime
            if number >= runtime.options.concurrency:
                return  # the concurrency was lowered by a reload
            self._waker.clear()
            if all(model.breaker.is_open for model in runtime.models.values()):
                # Nothing can progress: items stay queued, spending nothing, until a model
                # answers again.
                if self._drain:
                    if self._outage_outlasted_drain(runtime):
                        return
                    await self._idle(number, min(DEGRADED_POLL_S, runtime.options.poll_interval_s))
                    continue
                await self._idle(number, runtime.options.poll_interval_s)
                continue
            self._busy_since[number] = time.monotonic()
            released_before = self._released
            try:
                found = await self._claim_and_process(runtime, number)
                failures = 0
            except UNAVAILABLE_ERRORS as exc:
                failures += 1
                delay = min(0.5 * 2**failures, 30.0)
                log.warning("database.error", error=describe(exc), retry_in_s=delay)
                await self._idle(number, delay)
                continue
            if found:
                continue
            if self._drain:
                if await self._drain_waits(runtime, number, released_before):
                    continue
                return
            await self._idle(number, self._idle_wait_s(runtime))

    async def _idle(self, number: int, max_wait_s: float) -> None:
        self._busy_since[number] = None
        self._metrics.wakeup(await self._waker.wait(max_wait_s))

    async def _drain_waits(self, runtime: Runtime, number: int, released_before: int) -> bool:
        """Nothing was due at the last claim. Should `drain` go on? For retries due within
        seconds (items given back for a moment), for a model that is down (its items are
        parked) until drain_outage_wait_s, and for parked items released since that claim."""
        soon = self._waker.next_timer_in()
        if soon is not None and soon <= DRAIN_RETRY_HORIZON_S:
            await self._idle(number, soon)
            return True
        if any(model.breaker.is_open for model in runtime.models.values()):
            if self._outage_outlasted_drain(runtime):
                return False
            await self._idle(number, min(DEGRADED_POLL_S, runtime.options.poll_interval_s))
            return True
        await self._release_waiting(runtime)
        return self._released != released_before

    def _outage_outlasted_drain(self, runtime: Runtime) -> bool:
        limit = runtime.options.drain_outage_wait_s
        return any(model.breaker.open_for_s > limit for model in runtime.models.values())

    def _idle_wait_s(self, runtime: Runtime) -> float:
        if self._listening is not None and not self._listening():
            return min(DEGRADED_POLL_S, runtime.options.poll_interval_s)
        return runtime.options.poll_interval_s

    async def _claim_and_process(self, runtime: Runtime, number: int) -> bool:
        token = uuid.uuid4()
        self.in_flight.add(token)
        claim = asyncio.ensure_future(runtime.queue.claim(
            runtime.options.batch_size, token, runtime.options.lease_timeout_s
        ))
        try:
            batch = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # The claim may commit although we stop waiting: let it end, and keep the token in
            # in_flight so that release_in_flight() gives its rows back.
            with suppress(Exception):
                await asyncio.wait_for(claim, CLAIM_SETTLE_S)
            raise
        except BaseException:
            self.in_flight.discard(token)
            raise
        finally:
            self.claimed.set()
        if not batch.items:
            self.in_flight.discard(token)
            return False
        if len(batch.items) == runtime.options.batch_size:
            self._waker.wake()  # there is probably more: bring in one more worker
        await self.process(batch, runtime, number)
        self.in_flight.discard(token)
        return True

    async def process(
        self, batch: Batch, runtime: Runtime | None = None, number: int | None = None
    ) -> FinishCounts:
        """Embed and finish one claimed batch."""
        runtime = runtime or self.runtime
        started = time.monotonic()
        outcomes = [Outcome(item, clean_text(item.content_text, runtime.options.max_chars))
                    for item in batch.items]
        for outcome in outcomes:
            if not outcome.text:
                outcome.fail(EMPTY_TEXT_REASON, final=True)
        renewal = asyncio.create_task(self._renew_lease(batch.token, runtime, number))
        try:
            await asyncio.gather(
                *(self._embed_with(model, outcomes) for model in runtime.models.values())
            )
            if self.runtime is not runtime:
                _requeue_outdated(outcomes, runtime, self.runtime)
            delays = [self._delay_for(outcome, runtime.options) for outcome in outcomes]
            counts = await self._finish(runtime, batch.token, outcomes, delays)
            # Timers start now: the rows' scheduled_at was stamped inside the finish.
            finished = time.monotonic()
            for delay in {delay for delay in delays if delay > 0}:
                self._waker.wake_at(finished + delay)
            if counts.waiting and _back_already(outcomes, runtime):
                # A model these items were parked for answered again while the batch was in
                # flight, after the release that followed: release them now.
                self._waker.model_back.set()
        finally:
            renewal.cancel()
        seconds = time.monotonic() - started
        self._log_batch(batch, runtime, outcomes, counts, seconds)
        self._metrics.batch_finished(
            len(batch.items), counts.completed, counts.retrying, counts.failed, seconds
        )
        return counts

    async def _finish(
        self,
        runtime: Runtime,
        token: UUID,
        outcomes: Sequence[Outcome],
        delays: Sequence[float],
    ) -> FinishCounts:
        """Write the batch's results, riding out a short database outage while the lease holds."""
        deadline = time.monotonic() + runtime.options.lease_timeout_s
        delay = 0.2
        while True:
            try:
                return await runtime.queue.finish(token, outcomes, delays)
            except UNAVAILABLE_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("batch.finish_retry", error=describe(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay *= 2

    async def _embed_with(self, model: Model, outcomes: Sequence[Outcome]) -> None:
        name, breaker = model.name, model.breaker
        todo = [o for o in outcomes if o.text and name not in o.item.models_done]
        if not todo:
            return
        if breaker.is_open:
            for outcome in todo:
                outcome.wait_for(name, breaker.reason or "unavailable")
            return
        results = await embed_isolating(
            model.embedder,
            [o.text for o in todo],
            on_request=lambda seconds, kind: self._metrics.model_request(name, seconds, kind),
        )
        errors = [r for r in results if isinstance(r, ModelError)]
        transient = [r for r in errors if r.kind is ErrorKind.TRANSIENT]
        refused = [r for r in errors if r.kind is ErrorKind.REFUSED]
        if refused:
            # Credentials are wrong for every item alike: hold the model until a real request
            # succeeds again (its health endpoint may well answer without them).
            breaker.open(refused[0].reason, probe=model.embedder.answers)
        outage = bool(refused) or (
            bool(transient) and await breaker.confirm_outage(transient[0].reason)
        )
        for outcome, result in zip(todo, results, strict=True):
            if not isinstance(result, ModelError):
                outcome.vectors[name] = result
            elif result.kind in _OUTAGE_KINDS and outage:
                outcome.wait_for(name, result.reason)
            else:
                outcome.fail(f"{name}: {result.reason}")

    def _delay_for(self, outcome: Outcome, options: WorkerOptions) -> float:
        if outcome.succeeded or outcome.final or outcome.parked:
            return 0.0
        if outcome.charge:
            delay = backoff_delay(
                outcome.item.retry_count + 1,
                options.retry_delay_s,
                options.retry_delay_max_s,
                self._rng,
            )
        else:
            delay = UNAVAILABLE_RETRY_S
        return delay

    async def _renew_lease(self, token: UUID, runtime: Runtime, number: int | None) -> None:
        lease_s = runtime.options.lease_timeout_s
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await runtime.queue.renew(token, lease_s)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("lease.renew_failed", error=describe(exc))
                continue
            if number is not None and number in self._busy_since:
                self._busy_since[number] = time.monotonic()

    def _log_batch(
        self,
        batch: Batch,
        runtime: Runtime,
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
            models=sorted(runtime.models),
            vectors=sum(len(o.vectors) for o in outcomes),
            duration_ms=round(seconds * 1000, 1),
            completed=counts.completed,
            retrying=counts.retrying,
            waiting=counts.waiting,
            failed=counts.failed,
            lost=counts.lost,
        )


def _back_already(outcomes: Sequence[Outcome], runtime: Runtime) -> bool:
    waited_for = {name for outcome in outcomes if outcome.parked for name in outcome.waiting_for}
    return any(
        name not in runtime.models or not runtime.models[name].breaker.is_open
        for name in waited_for
    )


def _requeue_outdated(outcomes: Sequence[Outcome], runtime: Runtime, latest: Runtime) -> None:
    """A reload changed a model's version while this batch was in flight: its vectors are
    stored (with the version that made them) and the item is queued again for the new one."""
    for name, model in runtime.models.items():
        new = latest.models.get(name)
        if new is None or new.version == model.version:
            continue
        for outcome in outcomes:
            if name in outcome.vectors:
                outcome.fail(
                    f"{name}: version changed from {model.version} to {new.version} in flight",
                    charge=False,
                )


def build_models(
    embedders: Mapping[str, Embedder],
    versions: Mapping[str, str],
    waker: Waker,
    metrics: WorkerMetrics | None = None,
) -> dict[str, Model]:
    """A breaker for each embedder; when its model is back, the breaker wakes a worker and has
    the items parked for it released."""
    report = metrics or NoMetrics()

    def breaker_for(name: str, embedder: Embedder) -> CircuitBreaker:
        def closed() -> None:
            report.model_available(name, True)
            waker.model_back.set()
            waker.wake()

        return CircuitBreaker(
            name,
            embedder.healthy,
            on_open=lambda: report.model_available(name, False),
            on_close=closed,
        )

    return {
        name: Model(name, embedder, breaker_for(name, embedder), versions[name])
        for name, embedder in embedders.items()
    }
