"""Run `embedworker` with bench-only patches, to measure a proposed change before making it.

    BENCH_PATCHES=trace python bench/whatif.py run

Nothing in embedworker/ is changed: the patches are applied to the imported modules of this one
process, then embedworker's own command line runs. bench/run.py uses it through
``--whatif PATCHES`` (extra drain and model-bound runs), ``--latency-whatif``,
``--profile-whatif`` and ``--trace``. Patches (comma-separated in $BENCH_PATCHES):

  trace    record the duration of every claim, model request and finish, and write a summary
           (count, p50, p95, p99 ms) as JSON to $BENCH_TRACE_FILE at exit, and on SIGUSR1
           (which also starts a new summary)
  pool10   the connection pool capped at 10 connections whatever the concurrency (measured
           at concurrency 16: no change of CPU per item; not adopted)

A new proposal is a function here and an entry in PATCHES. The patches measured before are now
the daemon's own behaviour, and were removed:

  orjson   answers decoded with orjson.loads (adopted in commit 83d7381)
  numpy    check_vectors returns one float32 array per answer; rows go to pgvector as a byte
           copy (embedworker.db.connect.encode_vector) (adopted in commit c2d7e2b)
  batched  QueueStore.finish is ONE statement: the queue UPDATE and the embeddings upsert, fed
           from unnest() of arrays, vector[] included (adopted in commit c2d7e2b)
  noreset  pool connections skip asyncpg's reset query (adopted in commit c2d7e2b)
  pybase64 base64 answers decoded by pybase64 (adopted in commit fed9cee)
  npcount  the answer's brackets counted by numpy (adopted in commit fed9cee)
  uvloop   uvloop's event loop (adopted in commit f1bb656)
  gcfreeze gc.freeze() before the first claim (adopted in commit f1bb656)
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


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


def patch_pool10() -> None:
    from embedworker import service

    original = service.create_pool

    async def create_pool(dsn: str, max_size: int) -> Any:
        return await original(dsn, min(max_size, 10))

    service.create_pool = create_pool  # type: ignore[assignment]


PATCHES = {"trace": patch_trace, "pool10": patch_pool10}


def main() -> int:
    for name in filter(None, os.environ.get("BENCH_PATCHES", "").split(",")):
        if name not in PATCHES:
            known = ", ".join(PATCHES)
            print(f"bench/whatif.py: unknown patch {name!r} (known: {known}; the others in "
                  "this file's docstring are the daemon's own behaviour now)", file=sys.stderr)
            return 2
        PATCHES[name]()
    from embedworker.cli import main as embedworker_main

    return embedworker_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
