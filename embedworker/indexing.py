"""Vector indexes the daemon makes and keeps, and `embedworker index`.

For every enabled model whose column holds at least ``index_min_rows`` vectors and has no ANN
index, an HNSW cosine index is built with ``CREATE INDEX CONCURRENTLY`` on a connection of its
own (claiming and writing go on meanwhile), once across every copy of the daemon (an advisory
lock), with enough ``maintenance_work_mem`` for the graph (up to ``index_build_memory_mb``). A
build that fails leaves an invalid index, which the next check drops before building again.
The daemon checks at start, after a reload, and every ``index_check_interval_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal

import asyncpg
import structlog

from embedworker.config import Settings
from embedworker.db import indexes
from embedworker.db.connect import DATABASE_ERRORS, connect, describe
from embedworker.db.vectors import ModelColumns

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT_S = 5.0

Status = Literal["built", "exists", "busy", "too_few", "failed"]


@dataclass(frozen=True)
class IndexOptions:
    """How indexes are built, from the settings."""

    min_rows: int
    m: int
    ef_construction: int
    memory_cap_mb: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        return cls(
            min_rows=settings.index_min_rows,
            m=settings.index_m,
            ef_construction=settings.index_ef_construction,
            memory_cap_mb=settings.index_build_memory_mb,
        )


@dataclass(frozen=True)
class BuildOutcome:
    """What one attempt at a model's index came to."""

    model: str
    status: Status
    detail: str = ""
    seconds: float | None = None


Report = Callable[[str], None]


async def ensure_index(
    database_url: str,
    model: ModelColumns,
    options: IndexOptions,
    *,
    min_rows: int,
    wait: bool = False,
    report: Report | None = None,
) -> BuildOutcome:
    """Build the model's HNSW index unless an ANN index serves its column already, or it
    holds fewer than ``min_rows`` vectors. With ``wait`` a build elsewhere is waited for;
    without, it is left alone ("busy")."""
    conn = await connect(database_url)
    try:
        state = (await indexes.column_indexes(conn, [model]))[model.name]
        if state.serving is not None:
            return BuildOutcome(model.name, "exists", state.describe())
        if min_rows and await indexes.count_vectors(conn, model, min_rows) < min_rows:
            return BuildOutcome(model.name, "too_few", f"fewer than {min_rows} vectors")
        if not await indexes.try_lock(conn):
            if not wait:
                return BuildOutcome(model.name, "busy", "another index build is running")
            if report:
                report(f"{model.name}: waiting for another index build to finish")
            await indexes.lock(conn)
        # The lock is the session's: on any error, closing the connection releases it.
        outcome = await _build_locked(conn, model, options, report)
        await indexes.unlock(conn)
        return outcome
    except asyncio.CancelledError:
        # The daemon is stopping: end the build now rather than when it is done (the next
        # check drops the invalid index it leaves).
        await _cancel_backend(database_url, conn.get_server_pid())
        conn.terminate()
        raise
    finally:
        if not conn.is_closed():
            await conn.close(timeout=CLOSE_TIMEOUT_S)


async def _cancel_backend(database_url: str, pid: int) -> None:
    with suppress(*DATABASE_ERRORS):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            other = await connect(database_url)
            try:
                await other.execute("SELECT pg_cancel_backend($1)", pid)
            finally:
                await other.close()


async def _build_locked(
    conn: asyncpg.Connection, model: ModelColumns, options: IndexOptions, report: Report | None
) -> BuildOutcome:
    state = (await indexes.column_indexes(conn, [model]))[model.name]
    if state.serving is not None:  # built by whoever held the lock before us
        return BuildOutcome(model.name, "exists", state.describe())
    for name in await indexes.drop_leftovers(conn, model):
        log.warning("index.dropped_invalid", model=model.name, index=name)
    vectors = await indexes.count_vectors(conn, model, at_most=2**62)
    needed_mb = indexes.graph_memory_mb(vectors, model.dimension, options.m)
    server_mb = await indexes.maintenance_work_mem_mb(conn)
    memory_mb = max(server_mb, min(needed_mb, options.memory_cap_mb))
    await indexes.set_build_session(conn, memory_mb)
    name = indexes.index_name(model.column)
    log.info("index.building", model=model.name, column=model.column, index=name,
             vectors=vectors, maintenance_work_mem_mb=memory_mb, graph_estimate_mb=needed_mb,
             m=options.m, ef_construction=options.ef_construction)
    if needed_mb > memory_mb:
        log.warning("index.memory_short", model=model.name, graph_estimate_mb=needed_mb,
                    maintenance_work_mem_mb=memory_mb,
                    advice="raise index_build_memory_mb for a faster build")
    if report:
        report(f"{model.name}: building HNSW index {name} on embeddings.{model.column}"
               f" ({vectors} vectors, maintenance_work_mem {memory_mb} MB) ...")

    def on_notice(_conn: object, message: asyncpg.PostgresLogMessage) -> None:
        log.warning("index.notice", model=model.name, message=str(message),
                    detail=getattr(message, "detail", None))

    conn.add_log_listener(on_notice)
    started = time.monotonic()
    try:
        await indexes.create_hnsw(conn, model, m=options.m, ef_construction=options.ef_construction)
    except asyncpg.PostgresError as exc:
        log.error("index.failed", model=model.name, index=name, error=describe(exc))
        with suppress(*DATABASE_ERRORS):
            await indexes.drop_leftovers(conn, model)
        return BuildOutcome(model.name, "failed", describe(exc))
    finally:
        conn.remove_log_listener(on_notice)
    seconds = time.monotonic() - started
    log.info("index.built", model=model.name, index=name, vectors=vectors,
             seconds=round(seconds, 1))
    return BuildOutcome(model.name, "built", name, seconds)


class IndexKeeper:
    """The daemon's side task: checks every enabled model's index now and then."""

    def __init__(self, settings: Callable[[], Settings], columns: Callable[[], list[ModelColumns]]):
        self._settings = settings
        self._columns = columns
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Check again now (after a reload: a new model or column may need an index)."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._wake.clear()
            settings = self._settings()
            if settings.index_min_rows > 0:
                await self.check_all(settings)
            waker = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stopping.wait())
            try:
                await asyncio.wait({waker, stopper}, timeout=settings.index_check_interval_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
                stopper.cancel()

    async def check_all(self, settings: Settings) -> list[BuildOutcome]:
        options = IndexOptions.from_settings(settings)
        outcomes = []
        for model in self._columns():
            try:
                outcome = await ensure_index(
                    settings.database_url, model, options, min_rows=options.min_rows
                )
            except DATABASE_ERRORS as exc:
                log.warning("index.check_failed", model=model.name, error=describe(exc))
                continue
            outcomes.append(outcome)
        return outcomes
