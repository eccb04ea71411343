"""The claim scenario of bench/run.py: the claim statement timed with growing queues, then the
daemon's RSS on the largest queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
from harness import (
    MODELS,
    Postgres,
    Sampler,
    Worker,
    enqueue,
    log,
    median,
    model_servers,
    worker_env,
)
from scenario_drain import drain_stats

# -- claim -----------------------------------------------------------------------------------


def claim_sql() -> str:
    from embedworker.config import Settings
    from embedworker.db.queue import QueueStore
    from embedworker.service import model_columns

    settings = Settings(database_url="postgresql://unused/x",
                        models={m: {"url": "http://127.0.0.1:1"} for m in MODELS})
    store = QueueStore(None, model_columns(settings), default_max_retries=3)  # type: ignore[arg-type]
    return store._claim_sql


class Rollback(Exception):
    """Raised inside a transaction to roll it back, carrying what was measured in it."""


async def time_claim(url: str, runs: int) -> dict[str, Any]:
    """The claim statement (32 rows) in transactions that are rolled back: EXPLAIN ANALYZE's
    execution and planning times, and the client's round trip of the statement itself."""
    sql = claim_sql()
    conn = await asyncpg.connect(url)
    execution, planning, round_trip = [], [], []
    claimed = 0
    plan_text = ""
    try:
        for attempt in range(runs + 1):
            try:
                async with conn.transaction():
                    explained = await conn.fetchval(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, 32, uuid.uuid4(),
                        30.0, 3)
                    raise Rollback(explained)
            except Rollback as rolled:
                plan = json.loads(rolled.args[0])[0]
                if attempt:  # the first one warms the caches
                    execution.append(plan["Execution Time"])
                    planning.append(plan["Planning Time"])
            try:
                async with conn.transaction():
                    started = time.perf_counter()
                    rows = await conn.fetch(sql, 32, uuid.uuid4(), 30.0, 3)
                    elapsed = (time.perf_counter() - started) * 1000
                    raise Rollback(elapsed, len(rows))
            except Rollback as rolled:
                if attempt:
                    round_trip.append(rolled.args[0])
                    claimed = rolled.args[1]
        try:
            async with conn.transaction():
                lines = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, 32,
                                         uuid.uuid4(), 30.0, 3)
                raise Rollback("\n".join(r[0] for r in lines))
        except Rollback as rolled:
            plan_text = rolled.args[0]
    finally:
        await conn.close()
    return {"execution_ms": round(median(execution), 3),
            "planning_ms": round(median(planning), 3),
            "round_trip_ms": round(median(round_trip), 3),
            "execution_ms_all": [round(v, 3) for v in execution],
            "round_trip_ms_all": [round(v, 3) for v in round_trip],
            "rows_claimed": claimed, "plan": plan_text}


async def scenario_claim(pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    sizes = sorted(set(args.claim_sizes))
    out: dict[str, Any] = {"sizes": {}, "rss_run": None}
    async with pg.database("claim") as url:
        queued = 0
        for size in sizes:
            if size > queued:
                seconds = await enqueue(url, size - queued, first_id=queued + 1)
                log(f"claim: queued {size - queued} more rows in {seconds:.1f} s "
                    f"({(size - queued) / seconds:.0f} rows/s)")
                queued = size
            conn = await asyncpg.connect(url)
            await conn.execute("VACUUM ANALYZE embedding_queue")
            await conn.close()
            timing = await time_claim(url, args.claim_runs)
            out["sizes"][str(size)] = timing
            log(f"claim with {size} queued: execution {timing['execution_ms']} ms, "
                f"round trip {timing['round_trip_ms']} ms (planning {timing['planning_ms']} ms)")
        if args.rss_seconds > 0 and queued:
            out["rss_run"] = await rss_run(pg, args, url, queued)
            timing = await time_claim(url, args.claim_runs)
            out["after_partial_drain"] = timing
            log(f"claim after the partial drain ({queued} rows, no VACUUM): execution "
                f"{timing['execution_ms']} ms, round trip {timing['round_trip_ms']} ms")
    return out


async def rss_run(pg: Postgres, args: argparse.Namespace, url: str, queued: int) -> dict[str, Any]:
    """The daemon (`run`) on the big queue for ``rss_seconds``: its peak RSS and throughput."""
    with model_servers(args.server, 0) as servers:
        worker = Worker("run", worker_env(url, servers, concurrency=args.concurrency,
                                          batch_size=32),
                        args.log_dir)
        sampler = Sampler({"worker": worker.python_process, "postgres": pg.processes},
                          timeline="worker").start()
        await asyncio.sleep(args.rss_seconds)
        worker.terminate()
        result = await worker.wait(timeout=90)
        usage = sampler.stop(extra_cpu={"worker": result.cpu_s})
    stats = await drain_stats(url)
    rate = stats["completed"] / stats["span_s"] if stats["span_s"] else 0.0
    row = {"queued": queued, "seconds": args.rss_seconds, "completed": stats["completed"],
           "items_per_s": round(rate, 1), "worker_peak_rss_mb": round(result.max_rss_mb, 1),
           "worker_sampled_peak_rss_mb": round(usage.peak_rss_mb.get("worker", 0), 1),
           "exit_code": result.exit_code, "usage": usage.to_json(),
           "rss_timeline_mb": sampler.timeline}
    log(f"rss with {queued} queued: {row['worker_peak_rss_mb']} MB peak; drained "
        f"{row['completed']} at {row['items_per_s']} items/s")
    return row
