"""The composition root: builds the daemon from Settings, runs it, reloads it, shuts it down.

A starting daemon claims first: what it needs only after its first claim (the model clients, the
HTTP endpoint, the metrics, the schedules, the index keeper, the coverage report) is imported
and started once that claim has been answered.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from embedworker.config import ConfigError, ModelSettings, Settings, load_settings
from embedworker.db import migrations
from embedworker.db.connect import (
    DATABASE_ERRORS,
    UNAVAILABLE_ERRORS,
    create_pool,
    describe,
    wait_for_database,
)
from embedworker.db.queue import QueueStore
from embedworker.db.registry import register_models
from embedworker.db.vectors import ModelColumns
from embedworker.embedders.deferred import DeferredEmbedder
from embedworker.exits import EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from embedworker.listener import Listener
from embedworker.logs import configure_logging
from embedworker.systemd import notify, watchdog_interval_s
from embedworker.waker import Waker
from embedworker.worker import Model, Runtime, Worker, WorkerMetrics, WorkerOptions, build_models

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from embedworker.db.stats import QueueStatus, StatusReader
    from embedworker.embedders import Embedder
    from embedworker.indexing import IndexKeeper
    from embedworker.ops.metrics import Metrics
    from embedworker.ops.server import HealthReport, ObservabilityServer
    from embedworker.schedules import Scheduler

log = structlog.get_logger(__name__)

RELEASE_TIMEOUT_S = 5.0
# Settings a reload cannot change in a running process.
RESTART_ONLY = ("database_url", "channel", "http_listen", "processes")


class SchemaError(Exception):
    """The database is not ready for this configuration of embedworker."""


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.concurrency,
        batch_size=settings.batch_size,
        lease_timeout_s=settings.lease_timeout_s,
        max_chars=settings.max_chars,
        retry_delay_s=settings.retry_delay_s,
        retry_delay_max_s=settings.retry_delay_max_s,
        poll_interval_s=settings.poll_interval_s,
        drain_outage_wait_s=settings.drain_outage_wait_s,
    )


def model_columns(settings: Settings) -> list[ModelColumns]:
    return [
        ModelColumns(
            name=name, column=model.column, flag_column=model.flag_column,
            dimension=model.dimension, version=model.version,
        )
        for name, model in settings.enabled_models.items()
    ]


class Service:
    """One daemon: the pool, the listener, the workers and the lease recovery loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        drain: bool = False,
        config_path: Path | str | None = None,
        worker_process: int | None = None,
    ):
        """``worker_process``: this daemon is worker process N of a supervisor (``processes``
        > 1), which serves ``http_listen``; process 0 logs the start-up coverage."""
        self.settings = settings
        self.drain = drain
        self.config_path = config_path
        self.worker_process = worker_process
        self.stopping = asyncio.Event()
        self.force = asyncio.Event()
        self.waker = Waker()
        self.reloads = 0
        self.ready = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._pool: asyncpg.Pool | None = None
        self._worker: Worker | None = None
        self._listener: Listener | None = None
        self._scheduler: Scheduler | None = None
        self._index_keeper: IndexKeeper | None = None
        # Set once the first claim has been answered and the rest of the daemon has started.
        self._started = asyncio.Event()
        self._metrics: Metrics | None = None
        self._reports = _MetricsOnDemand(lambda: self.metrics)
        self.http: ObservabilityServer | None = None
        self._model_settings: dict[str, ModelSettings] = {}
        self._all_models: list[Model] = []
        self._last_recovery = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._status: StatusReader | None = None

    @property
    def metrics(self) -> Metrics:
        """The daemon's Prometheus metrics, built (and prometheus-client imported) by the start
        after the first claim, or by a report that comes earlier."""
        return self._metrics if self._metrics is not None else self._build_metrics()

    def _build_metrics(self) -> Metrics:
        from embedworker.ops.metrics import Metrics

        self._metrics = Metrics(self.settings.enabled_models)
        return self._metrics

    # -- signals --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: stop claiming and finish in-flight work. Second call: stop now."""
        if self.stopping.is_set():
            log.warning("shutdown.forced")
            self.force.set()
            return
        log.info("shutdown.requested", grace_s=self.settings.shutdown_grace_s)
        notify("STOPPING=1")
        self.stopping.set()
        self.waker.wake_all()

    def request_reload(self) -> None:
        """SIGHUP: re-read the configuration; never ends the process."""
        task = asyncio.create_task(self.reload(), name="reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop}
        if not self.drain:
            handlers[signal.SIGHUP] = self.request_reload
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        try:
            return await self._run()
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)

    # -- start and supervise --------------------------------------------------------------

    async def _run(self) -> int:
        settings = self.settings
        conn = await wait_for_database(settings.database_url, self.stopping)
        if conn is None:
            return EXIT_OK
        try:
            await check_schema(conn, settings.channel)
        finally:
            await conn.close()

        self._pool = await create_pool(settings.database_url, max_size=settings.concurrency + 2)
        try:
            runtime = await self._build_runtime(settings)
            self._model_settings = dict(settings.enabled_models)
            problems = await _validate(runtime)
            if problems:
                raise SchemaError("; ".join(problems))
            listener = None
            if not self.drain:
                listener = Listener(settings.database_url, settings.channel, self.waker)
            self._listener = listener
            self._worker = Worker(
                runtime,
                self.waker,
                listening=(lambda: listener.healthy) if listener is not None else None,
                metrics=self._reports,
            )
            log.info(
                "embedworker.started",
                models=sorted(runtime.models),
                concurrency=settings.concurrency,
                batch_size=settings.batch_size,
                channel=settings.channel,
                drain=self.drain,
            )
            await self._bind_http()
            try:
                return await self._supervise(self._worker, runtime)
            finally:
                if self.http is not None:
                    await self.http.stop()
        finally:
            for model in self._all_models:
                await model.breaker.aclose()
                await model.embedder.aclose()
            await self._pool.close()
            log.info("embedworker.stopped")

    async def _build_runtime(self, settings: Settings, previous: Runtime | None = None) -> Runtime:
        """A runtime for ``settings``; models whose settings did not change are kept as they
        are (same client, same breaker). The clients of the others are built by _build_clients
        or by their first use."""
        assert self._pool is not None
        reused: dict[str, Model] = {}
        fresh: dict[str, Embedder] = {}
        for name, model_settings in settings.enabled_models.items():
            if previous is not None and name in previous.models and \
                    self._model_settings.get(name) == model_settings:
                reused[name] = previous.models[name]
            else:
                fresh[name] = DeferredEmbedder(name, model_settings)
        versions = {name: model.version for name, model in settings.enabled_models.items()}
        built = build_models(fresh, versions, self.waker, self._reports)
        self._all_models.extend(built.values())
        models = {name: reused.get(name) or built[name] for name in settings.enabled_models}
        store = QueueStore(
            self._pool, model_columns(settings), default_max_retries=settings.max_retries
        )
        return Runtime(queue=store, models=models, options=worker_options(settings))

    @staticmethod
    def _build_clients(runtime: Runtime) -> None:
        """Build the model clients that no request has built yet."""
        for model in runtime.models.values():
            if isinstance(model.embedder, DeferredEmbedder):
                model.embedder.client()

    async def _supervise(self, worker: Worker, runtime: Runtime) -> int:
        work = asyncio.create_task(worker.run(self.stopping, drain=self.drain), name="workers")
        starting = asyncio.create_task(self._start_the_rest(worker), name="start")
        side = [starting, self._once_started(self._recover_leases, "lease-recovery")]
        if self._listener is not None:
            side.append(asyncio.create_task(self._listener.run(self.stopping), name="listener"))
            side += [
                self._once_started(self._run_scheduler, "schedules"),
                self._once_started(self._announce_ready, "ready"),
                self._once_started(self._watchdog, "watchdog"),
                self._once_started(self._keep_indexes, "indexes"),
            ]
            if self.worker_process in (None, 0):  # once per service
                side.append(self._once_started(self._report_coverage, "coverage"))
        stop_wait = asyncio.create_task(self.stopping.wait())
        exit_code = EXIT_OK
        try:
            # Runs until shutdown, the end of a drain, or a crash of any task.
            pending = {work, stop_wait, *side}
            while not (work.done() or stop_wait.done()):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(_crashed(task) for task in done):
                    exit_code = EXIT_FAILURE
                    break
            if exit_code == EXIT_OK and not stop_wait.done() and worker.claimed.is_set():
                # A drain that found its work done at once still completes its start.
                await asyncio.wait([starting])
                if _crashed(starting):
                    exit_code = EXIT_FAILURE
            self.stopping.set()
            self.waker.wake_all()
            await self._finish_work(work)
        finally:
            for task in [*side, stop_wait, *self._tasks]:
                task.cancel()
            for task in side:
                with suppress(asyncio.CancelledError, Exception):
                    await task
        if exit_code == EXIT_OK and _crashed(work):
            exit_code = EXIT_FAILURE
        if exit_code == EXIT_OK and self.drain:
            down = {name: model.breaker.reason for name, model in runtime.models.items()
                    if model.breaker.is_open}
            if down:
                log.error("drain.incomplete", unavailable=down,
                          waited_s=self.settings.drain_outage_wait_s)
                exit_code = EXIT_UNAVAILABLE
        released = await self._release(worker)
        if released:
            log.info("shutdown.released", items=released)
        return exit_code

    async def _start_the_rest(self, worker: Worker) -> None:
        """Once the first claim is answered: the model clients, the HTTP endpoint, the models
        registered for embedworker_search(); then the other tasks beside the workers start."""
        await worker.claimed.wait()
        self._build_clients(worker.runtime)
        if self._metrics is None:
            self._build_metrics()
        if self.http is not None:
            await self.http.start()
        await self._register_models()
        # What start-up made (modules, settings, clients) lives as long as the process: the
        # cyclic collector need not walk it again at every full collection (4-9 % less CPU per
        # item in a drain with base64 answers, none measurable with JSON; see the README).
        gc.freeze()
        self._started.set()

    def _once_started(
        self, job: Callable[[], Awaitable[None]], name: str
    ) -> asyncio.Task[None]:
        """A task beside the workers that begins once the daemon has started completely."""

        async def run() -> None:
            await self._started.wait()
            await job()

        return asyncio.create_task(run(), name=name)

    async def _run_scheduler(self) -> None:
        from embedworker.schedules import Scheduler

        assert self._pool is not None
        self._scheduler = Scheduler(self._pool, self.settings)
        await self._scheduler.run(self.stopping)

    async def _keep_indexes(self) -> None:
        from embedworker.indexing import IndexKeeper

        self._index_keeper = IndexKeeper(lambda: self.settings,
                                         lambda: model_columns(self.settings))
        await self._index_keeper.run(self.stopping)

    async def _report_coverage(self) -> None:
        """Log once at start how many rows have each model's current vector, and what to run
        when some do not (a new model, a changed version: re-embedding is the operator's call)."""
        from embedworker.db.coverage import model_coverage, reembed_advice

        assert self._pool is not None
        try:
            coverage = await model_coverage(self._pool, model_columns(self.settings))
        except UNAVAILABLE_ERRORS as exc:
            log.warning("model.coverage_unavailable", error=describe(exc))
            return
        for name, counts in coverage.items():
            advice = reembed_advice(name, counts)
            if advice is None:
                log.info("model.coverage", model=name, **counts.as_json())
            else:
                log.warning("model.coverage_incomplete", model=name, advice=advice,
                            **counts.as_json())

    async def _announce_ready(self) -> None:
        """READY=1 once the database answers and LISTEN is up."""
        assert self._listener is not None
        await self._listener.connected.wait()
        notify("READY=1", "STATUS=listening on " + self.settings.channel)
        self.ready.set()
        log.info("embedworker.ready")

    async def _finish_work(self, work: asyncio.Task[None]) -> None:
        """Let in-flight batches finish within the grace period, then cancel them."""
        if work.done():
            return
        force_wait = asyncio.create_task(self.force.wait())
        await asyncio.wait(
            [work, force_wait],
            timeout=self.settings.shutdown_grace_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        force_wait.cancel()
        if not work.done():
            log.warning("shutdown.grace_expired", grace_s=self.settings.shutdown_grace_s)
            work.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await work

    async def _release(self, worker: Worker) -> int:
        try:
            return await asyncio.wait_for(worker.release_in_flight(), RELEASE_TIMEOUT_S)
        except UNAVAILABLE_ERRORS as exc:  # includes TimeoutError
            log.error("shutdown.release_failed", error=describe(exc))
            return 0

    def _recovery_interval_s(self) -> float:
        return min(max(self.settings.lease_timeout_s / 3, 0.5), 10.0)

    async def _recover_leases(self) -> None:
        while not self.stopping.is_set():
            self._last_recovery = time.monotonic()
            assert self._worker is not None
            store = self._worker.runtime.queue
            assert isinstance(store, QueueStore)
            try:
                requeued, failed = await store.recover_expired(
                    self.settings.lease_timeout_s, self.settings.max_reclaims
                )
                if requeued or failed:
                    log.warning("lease.recovered", requeued=requeued, failed=failed)
                    self.metrics.lease_recovered(requeued, failed)
                    self.waker.wake()
            except UNAVAILABLE_ERRORS as exc:
                log.warning("lease.recovery_failed", error=describe(exc))
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self._recovery_interval_s())

    # -- health, readiness, /metrics and systemd's watchdog -------------------------------

    async def _bind_http(self) -> None:
        """Take ``http_listen``'s address before the first claim (an address in use stops the
        start there); the endpoint answers once the first claim is answered."""
        if self.drain or self.worker_process is not None or not self.settings.http_listen:
            return
        from embedworker.ops.server import ObservabilityServer, parse_listen

        host, port = parse_listen(self.settings.http_listen)
        server = ObservabilityServer(
            host, port, health=self.health, ready=self.readiness, metrics=lambda: self.metrics,
            status=self.queue_status,
        )
        await server.bind()
        self.http = server

    def health(self) -> HealthReport:
        from embedworker.ops.server import HealthReport

        problems = self.health_problems()
        return HealthReport(ok=not problems, reasons=tuple(problems))

    async def readiness(self) -> HealthReport:
        """The database answers, LISTEN works, and at least one model is not known down."""
        from embedworker.ops.server import readiness

        assert self._pool is not None
        assert self._worker is not None
        try:
            async with asyncio.timeout(2):
                await self._pool.fetchval("SELECT 1")
            database = True
        except DATABASE_ERRORS:
            database = False
        runtime_models = self._worker.runtime.models
        models = {name: not model.breaker.is_open for name, model in runtime_models.items()}
        problems = {name: model.breaker.reason or "unavailable"
                    for name, model in runtime_models.items() if model.breaker.is_open}
        listening = self._listener.healthy if self._listener is not None else None
        return readiness(
            database=database, listener=listening, models=models, model_problems=problems
        )

    async def queue_status(self) -> QueueStatus:
        """The queue's figures, with each model's coverage."""
        from embedworker.db.indexes import column_indexes
        from embedworker.db.stats import StatusReader

        assert self._pool is not None
        if self._status is None:
            self._status = StatusReader(self._pool)
        models = model_columns(self.settings)
        status = await self._status.read(models, self.settings.max_retries)
        return replace(status, indexes=await column_indexes(self._pool, models))

    def health_problems(self) -> list[str]:
        """Why the daemon is not healthy; empty when its loops are all ticking."""
        problems = []
        if self._worker is not None and (wedged := self._worker.wedged()):
            problems.append(f"worker coroutines {wedged} show no progress")
        stalled_after = 3 * self._recovery_interval_s() + 30
        if time.monotonic() - self._last_recovery > stalled_after:
            problems.append("the lease recovery loop has stalled")
        return problems

    async def _watchdog(self) -> None:
        """WATCHDOG=1 at half of WATCHDOG_USEC while healthy; silence lets systemd restart us."""
        interval = watchdog_interval_s()
        if interval is None:
            return
        while not self.stopping.is_set():
            problems = self.health_problems()
            if problems:
                log.error("watchdog.unhealthy", problems=problems)
            else:
                notify("WATCHDOG=1")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)

    # -- reload ---------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Apply the configuration file and environment as they are now; keep the running
        configuration if they are invalid. True when the new configuration was applied."""
        async with self._reload_lock:
            notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                return await self._reload()
            finally:
                notify("READY=1")

    async def _reload(self) -> bool:
        old = self.settings
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("reload.rejected", reason=str(exc))
            return False
        ignored = [key for key in RESTART_ONLY if getattr(new, key) != getattr(old, key)]
        if ignored:
            log.warning("reload.needs_restart", keys=ignored)
            new = new.model_copy(update={key: getattr(old, key) for key in ignored})
        if self._worker is None:
            self.settings = new
            return True
        runtime = await self._build_runtime(new, self._worker.runtime)
        problems = await _validate(runtime)
        if problems:
            log.error("reload.rejected", reason="; ".join(problems))
            return False
        self._build_clients(runtime)
        configure_logging(new.log_level)
        self._model_settings = dict(new.enabled_models)
        self._worker.reconfigure(runtime)
        if self._scheduler is not None:
            self._scheduler.reload(new)
        self.settings = new
        self.reloads += 1
        await self._register_models()
        if self._index_keeper is not None:
            self._index_keeper.wake()
        changed = sorted(key for key in Settings.model_fields
                         if getattr(new, key) != getattr(old, key))
        log.info("reload.applied", changed=changed)
        return True


    async def _register_models(self) -> None:
        """Tell embedworker_search() the models of the configuration now in force."""
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn:
                await register_models(conn, self.settings)
        except DATABASE_ERRORS as exc:
            log.warning("models.register_failed", error=describe(exc))


async def _validate(runtime: Runtime) -> list[str]:
    store = runtime.queue
    assert isinstance(store, QueueStore)
    try:
        return await store.validate()
    except UNAVAILABLE_ERRORS as exc:
        return [f"database unavailable: {describe(exc)}"]


class _MetricsOnDemand:
    """The worker's reports, passed on to the daemon's Metrics (see Service.metrics)."""

    def __init__(self, metrics: Callable[[], WorkerMetrics]):
        self._metrics = metrics

    def batch_finished(
        self, size: int, completed: int, retrying: int, failed: int, seconds: float
    ) -> None:
        self._metrics().batch_finished(size, completed, retrying, failed, seconds)

    def model_request(self, model: str, seconds: float, error_kind: str | None) -> None:
        self._metrics().model_request(model, seconds, error_kind)

    def model_available(self, model: str, up: bool) -> None:
        self._metrics().model_available(model, up)

    def wakeup(self, reason: str) -> None:
        self._metrics().wakeup(reason)


def _crashed(task: asyncio.Task[Any]) -> bool:
    """True (and logged) when ``task`` ended with an exception."""
    if not task.done() or task.cancelled() or task.exception() is None:
        return False
    error = task.exception()
    log.error("task.crashed", task=task.get_name(), error=describe(error or Exception()),
              exc_info=error)
    return True


async def check_schema(conn: asyncpg.Connection, channel: str) -> None:
    """Raise SchemaError unless migrations are current and the trigger uses ``channel``."""
    missing = await migrations.pending(conn)
    if missing:
        raise SchemaError(
            f"database schema is not current (missing {', '.join(missing)}): "
            "run `embedworker migrate`"
        )
    current = await conn.fetchval("SELECT embedworker_channel()")
    if current != channel:
        raise SchemaError(
            f"the NOTIFY trigger uses channel {current!r} but channel is {channel!r}: "
            "run `embedworker migrate`"
        )

