"""Run `embedworker` with bench-only patches, to measure a proposed change before making it.

    BENCH_PATCHES=orjson,numpy python bench/whatif.py drain

Nothing in embedworker/ is changed: the patches are applied to the imported modules of this one
process, then embedworker's own command line runs. bench/run.py uses it through
``--whatif PATCHES`` (drain scenario) and for tracing. Patches (comma-separated in
$BENCH_PATCHES):

  orjson   post_once decodes answers with orjson.loads instead of json.loads (a no-op since
           the daemon does so itself, commit 83d7381)
  numpy    check_vectors validates with numpy (one float32 array per answer) and hands pgvector
           float32 rows, whose binary encoding is a byte copy instead of a list conversion
  batched  QueueStore finishes a batch in ONE statement: the same queue UPDATE and embeddings
           upsert, the upsert fed from unnest() of arrays (vector[] included) instead of
           executemany (one round trip, one plan, per batch); two-model configurations only
  noreset  the pool does not run asyncpg's reset query (pg_advisory_unlock_all, CLOSE ALL,
           UNLISTEN *, RESET ALL) each time a connection goes back to it: the daemon leaves no
           session state on pool connections (LISTEN has its own connection)
  trace    record the duration of every claim, model request and finish, and write a summary
           (count, p50, p95, p99 ms) as JSON to $BENCH_TRACE_FILE at exit, and on SIGUSR1
           (which also starts a new summary)
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def patch_orjson() -> None:
    import orjson

    import embedworker.embedders.http as http

    if hasattr(http, "orjson"):
        return  # the daemon decodes with orjson already (since 83d7381)

    class _Json:
        loads = staticmethod(orjson.loads)

    http.json = _Json  # type: ignore[assignment]


def patch_numpy() -> None:
    import numpy as np

    import embedworker.embedders.client as client
    from embedworker.embedders.errors import ErrorKind, ModelError

    def check_vectors(vectors: Any, count: int, dimension: int) -> list[Any]:
        if not isinstance(vectors, list):
            raise ModelError(ErrorKind.MALFORMED, "malformed response: no list of vectors")
        if len(vectors) != count:
            raise ModelError(ErrorKind.MALFORMED,
                             f"malformed response: {len(vectors)} vectors for {count} inputs")
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise ModelError(ErrorKind.MALFORMED, "malformed response: not a list of equal-"
                             "length lists of numbers") from None
        if array.ndim != 2 or array.shape[1] != dimension:
            raise ModelError(ErrorKind.MALFORMED,
                             f"malformed response: dimension {array.shape}, expected {dimension}")
        if not np.isfinite(array).all():
            raise ModelError(ErrorKind.MALFORMED, "malformed response: NaN or infinite value")
        return list(array)

    client.check_vectors = check_vectors  # type: ignore[assignment]


def patch_batched() -> None:
    import paths
    from pgvector import Vector

    from embedworker.db.queue import FinishCounts, QueueStore, _short

    sql = paths._batched_finish_sql()

    async def _finish_once(self: QueueStore, token: Any, outcomes: Sequence[Any],
                           delays: Sequence[float]) -> FinishCounts:
        names = [model.name for model in self._models]
        assert names == ["e5_small", "bge_m3"], "the batched prototype knows two models"

        def vector(outcome: Any, name: str) -> Any:
            value = outcome.vectors.get(name)
            return None if value is None else Vector(value)

        items = [o.item for o in outcomes]
        rows = await self._pool.fetch(
            sql,
            [i.id for i in items], [o.succeeded for o in outcomes],
            [o.charge for o in outcomes], [o.final for o in outcomes],
            [_short(o.error) for o in outcomes], list(delays), token,
            self._default_max_retries,
            [i.id for i in items], [i.content_type for i in items],
            [i.content_id for i in items], [i.content_hash for i in items],
            [i.content_text for i in items],
            [vector(o, "e5_small") for o in outcomes], [vector(o, "bge_m3") for o in outcomes],
        )
        statuses = [row["status"] for row in rows]
        return FinishCounts(
            completed=statuses.count("completed"), retrying=statuses.count("queued"),
            failed=statuses.count("failed"), lost=len(outcomes) - len(rows),
        )

    QueueStore._finish_once = _finish_once  # type: ignore[method-assign]


def patch_noreset() -> None:
    import asyncpg

    import embedworker.db.connect as connect

    async def no_reset(conn: Any) -> None:
        return None

    def create_pool(*args: Any, **kwargs: Any) -> Any:
        return asyncpg.create_pool(*args, reset=no_reset, **kwargs)

    class _Asyncpg:
        def __getattr__(self, name: str) -> Any:
            return create_pool if name == "create_pool" else getattr(asyncpg, name)

    connect.asyncpg = _Asyncpg()  # type: ignore[assignment]


def patch_trace() -> None:
    from embedworker.db.queue import QueueStore
    from embedworker.embedders.client import HttpEmbedder

    durations: dict[str, list[float]] = {}

    def record(name: str, started: float) -> None:
        durations.setdefault(name, []).append(time.perf_counter() - started)

    claim, finish, embed = QueueStore.claim, QueueStore.finish, HttpEmbedder.embed

    async def traced_claim(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        batch = await claim(self, *args, **kwargs)
        record("claim" if batch.items else "claim_empty", started)
        return batch

    async def traced_finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await finish(self, *args, **kwargs)
        finally:
            record("finish", started)

    async def traced_embed(self: Any, texts: Any) -> Any:
        started = time.perf_counter()
        try:
            return await embed(self, texts)
        finally:
            record(f"embed_{self.name}", started)

    QueueStore.claim = traced_claim  # type: ignore[method-assign]
    QueueStore.finish = traced_finish  # type: ignore[method-assign]
    HttpEmbedder.embed = traced_embed  # type: ignore[method-assign]

    def dump() -> None:
        target = os.environ.get("BENCH_TRACE_FILE")
        if not target:
            return
        summary = {}
        for name, values in list(durations.items()):
            ordered = sorted(values)

            def at(q: float, ordered: list[float] = ordered) -> float:
                return round(1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)

            summary[name] = {"n": len(values), "p50_ms": at(0.5), "p95_ms": at(0.95),
                             "p99_ms": at(0.99), "total_s": round(sum(values), 3)}
        Path(target).write_text(json.dumps(summary, indent=1))

    def dump_and_reset(signum: int, frame: Any) -> None:
        dump()
        durations.clear()

    atexit.register(dump)
    signal.signal(signal.SIGUSR1, dump_and_reset)


PATCHES = {"orjson": patch_orjson, "numpy": patch_numpy, "batched": patch_batched,
           "noreset": patch_noreset, "trace": patch_trace}


def main() -> int:
    for name in filter(None, os.environ.get("BENCH_PATCHES", "").split(",")):
        PATCHES[name]()
    from embedworker.cli import main as embedworker_main

    return embedworker_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
