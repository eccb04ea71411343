"""The composition root: builds the daemon from Settings, runs it, and shuts it down in order."""

from __future__ import annotations

import asyncio
import signal
from contextlib import suppress
from typing import Any

import asyncpg
import structlog

from embedworker.config import Settings
from embedworker.db import migrations
from embedworker.db.connect import UNAVAILABLE_ERRORS, create_pool, describe, wait_for_database
from embedworker.db.queue import ModelColumns, QueueStore
from embedworker.embedders import Embedder, build_embedder
from embedworker.listener import Listener
from embedworker.systemd import notify
from embedworker.waker import Waker
from embedworker.worker import Worker, WorkerOptions

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
RELEASE_TIMEOUT_S = 5.0


class SchemaError(Exception):
    """The database is not ready for this version of embedworker."""


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.concurrency,
        batch_size=settings.batch_size,
        lease_timeout_s=settings.lease_timeout_s,
        max_chars=settings.max_chars,
        retry_delay_s=settings.retry_delay_s,
        retry_delay_max_s=settings.retry_delay_max_s,
        poll_interval_s=settings.poll_interval_s,
    )


def model_columns(settings: Settings) -> list[ModelColumns]:
    return [
        ModelColumns(name=name, column=model.column, flag_column=model.flag_column)
        for name, model in settings.enabled_models.items()
    ]


class Service:
    """One daemon: the pool, the listener, the workers and the lease recovery loop."""

    def __init__(self, settings: Settings, *, drain: bool = False):
        self.settings = settings
        self.drain = drain
        self.stopping = asyncio.Event()
        self.force = asyncio.Event()
        self.waker = Waker()

    def request_stop(self) -> None:
        """First call: stop claiming and finish in-flight work. Second call: stop now."""
        if self.stopping.is_set():
            log.warning("shutdown.forced")
            self.force.set()
            return
        log.info("shutdown.requested", grace_s=self.settings.shutdown_grace_s)
        notify("STOPPING=1")
        self.stopping.set()
        self.waker.wake()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            return await self._run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _run(self) -> int:
        settings = self.settings
        conn = await wait_for_database(settings.database_url, self.stopping)
        if conn is None:
            return EXIT_OK
        try:
            await check_schema(conn, settings.channel)
        finally:
            await conn.close()

        pool = await create_pool(settings.database_url, max_size=settings.concurrency + 2)
        embedders: dict[str, Embedder] = {
            name: build_embedder(name, model) for name, model in settings.enabled_models.items()
        }
        store = QueueStore(
            pool, model_columns(settings), default_max_retries=settings.max_retries
        )
        listener = None if self.drain else Listener(
            settings.database_url, settings.channel, self.waker
        )
        worker = Worker(
            store,
            embedders,
            worker_options(settings),
            self.waker,
            listening=listener.connected if listener else None,
        )
        log.info(
            "embedworker.started",
            models=sorted(embedders),
            concurrency=settings.concurrency,
            batch_size=settings.batch_size,
            channel=settings.channel,
            drain=self.drain,
        )
        try:
            return await self._supervise(worker, store, listener)
        finally:
            await worker.aclose()
            for embedder in embedders.values():
                await embedder.aclose()
            await pool.close()
            log.info("embedworker.stopped")

    async def _supervise(
        self, worker: Worker, store: QueueStore, listener: Listener | None
    ) -> int:
        work = asyncio.create_task(worker.run(self.stopping, drain=self.drain), name="workers")
        side = [asyncio.create_task(self._recover_leases(store), name="lease-recovery")]
        if listener is not None:
            side.append(asyncio.create_task(listener.run(self.stopping), name="listener"))
            side.append(asyncio.create_task(self._announce_ready(listener), name="ready"))
        stop_wait = asyncio.create_task(self.stopping.wait())
        exit_code = EXIT_OK
        try:
            # Runs until shutdown, the end of a drain, or a crash of any task.
            pending = {work, stop_wait, *side}
            while not (work.done() or stop_wait.done()):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if _crashed(task):
                        exit_code = EXIT_FAILURE
                if exit_code != EXIT_OK:
                    break
            self.stopping.set()
            self.waker.wake()
            await self._finish_work(work)
        finally:
            for task in [*side, stop_wait]:
                task.cancel()
            for task in side:
                with suppress(asyncio.CancelledError, Exception):
                    await task
        if exit_code == EXIT_OK and _crashed(work):
            exit_code = EXIT_FAILURE
        released = await self._release(worker)
        if released:
            log.info("shutdown.released", items=released)
        return exit_code

    async def _announce_ready(self, listener: Listener) -> None:
        """READY=1 once the database answers and LISTEN is up."""
        await listener.connected.wait()
        notify("READY=1", "STATUS=listening on " + self.settings.channel)
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

    async def _recover_leases(self, store: QueueStore) -> None:
        interval = min(max(self.settings.lease_timeout_s / 3, 0.5), 10.0)
        while not self.stopping.is_set():
            try:
                requeued, failed = await store.recover_expired(
                    self.settings.lease_timeout_s, self.settings.max_reclaims
                )
                if requeued or failed:
                    log.warning("lease.recovered", requeued=requeued, failed=failed)
                    self.waker.wake()
            except UNAVAILABLE_ERRORS as exc:
                log.warning("lease.recovery_failed", error=describe(exc))
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)


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
