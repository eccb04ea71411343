"""The drain scenarios of bench/run.py: start-up, the COPY ceiling, `drain` runs (the drain,
grid, profile and model-bound rows are all drain_run), the pieces alone (paths) and the summary
of a py-spy profile.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import breakdown
import harness
import psutil
import startup
from harness import (
    DEFAULT_CAPS,
    FILLER,
    MODELS,
    WORKER_CONCURRENCY,
    Postgres,
    Sampler,
    Worker,
    enqueue,
    log,
    model_servers,
    worker_env,
)

# -- the COPY ceiling ------------------------------------------------------------------------


async def scenario_copy(pg: Postgres, items: int, repeat: int) -> dict[str, Any]:
    """Binary COPY of ``items`` finished rows, both vectors, into a copy of ``embeddings``."""
    import hashlib
    import zlib

    from pgvector import Vector

    from embedworker.standin import deterministic_vector

    pools = {model: [Vector(deterministic_vector(model, f"pool {i}", dim)) for i in range(256)]
             for model, dim in MODELS.items()}
    columns = ["content_type", "content_id", "content_hash", "content_text",
               "embedding_e5_small", "embedding_bge_m3", "has_e5_embedding",
               "has_bge_embedding", "status"]

    def records() -> Any:
        for n in range(1, items + 1):
            text = f"item {n} {FILLER}"
            slot = zlib.crc32(text.encode()) % 256
            yield ("post", n, hashlib.sha256(text.encode()).hexdigest(), text,
                   pools["e5_small"][slot], pools["bge_m3"][slot], True, True, "completed")

    runs = []
    async with pg.database("copy") as url:
        conn = await asyncpg.connect(url)
        await harness_register_vector(conn)
        await conn.execute("CREATE TABLE embeddings_copy (LIKE embeddings INCLUDING ALL)")
        for attempt in range(repeat):
            await conn.execute("TRUNCATE embeddings_copy")
            await pg.admin("CHECKPOINT")
            sampler = Sampler({"postgres": pg.processes}).start()
            started = time.perf_counter()
            await conn.copy_records_to_table("embeddings_copy", records=records(),
                                             columns=columns)
            seconds = time.perf_counter() - started
            usage = sampler.stop()
            runs.append({"seconds": round(seconds, 3), "rows_per_s": round(items / seconds, 1),
                         "usage": usage.to_json()})
            log(f"copy #{attempt + 1}: {items} rows in {seconds:.2f} s = "
                f"{items / seconds:.0f} rows/s")
        size = await conn.fetchval("SELECT pg_total_relation_size('embeddings_copy')")
        await conn.close()
    best = max(run["rows_per_s"] for run in runs)
    return {"items": items, "runs": runs, "rows_per_s": best,
            "table_mb": round(size / 2**20, 1)}


async def harness_register_vector(conn: asyncpg.Connection) -> None:
    from pgvector.asyncpg import register_vector

    await register_vector(conn)


# -- drains ----------------------------------------------------------------------------------


async def drain_stats(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status NOT IN ('completed', 'failed')) AS remaining,
                   extract(epoch FROM max(updated_at) FILTER (WHERE status = 'completed')
                                      - min(processing_started_at)) AS span_s
            FROM embedding_queue
            """
        )
        complete = await conn.fetchval(
            "SELECT count(*) FROM embeddings WHERE status = 'completed'"
            " AND has_e5_embedding AND has_bge_embedding"
        )
    finally:
        await conn.close()
    return {**dict(row), "span_s": float(row["span_s"] or 0), "embeddings_complete": complete}


async def drain_run(
    pg: Postgres,
    args: argparse.Namespace,
    *,
    kind: str,
    latency_ms: float,
    items: int,
    concurrency: int = WORKER_CONCURRENCY,
    batch: int = 32,
    caps: dict[str, int] | None = None,
    label: str = "drain",
    profile: Path | None = None,
    patches: str = "",
    protocol: str = "hfspace",
    processes: int = 1,
) -> dict[str, Any]:
    """Queue ``items``, run `drain` until it exits; throughput, CPU, RSS.

    ``processes`` workers drain the same queue at once (each with ``concurrency`` coroutines):
    CPU is their sum, the peak RSS the largest one's.
    """
    caps = caps or DEFAULT_CAPS
    revision = harness.git_revision()
    async with pg.database(label) as url:
        enqueue_s = await enqueue(url, items)
        await pg.admin("CHECKPOINT")
        with model_servers(kind, latency_ms, caps, protocol) as servers:
            env = worker_env(url, servers, concurrency=concurrency, batch_size=batch,
                             model_batch=caps)
            workers = [Worker("drain", env, args.log_dir, profile=profile, patches=patches)
                       for _ in range(processes)]
            groups: dict[str, Callable[[], list[psutil.Process]]] = {
                "worker": lambda: [p for w in workers for p in w.python_process()],
                "postgres": pg.processes,
            }
            for model, server in servers.items():
                groups[f"server_{model}"] = (lambda s=server: [s.ps])
            sampler = Sampler(groups).start()
            results = [await w.wait(timeout=items / 20 + 300) for w in workers]
            result = results[0]
            if processes > 1:
                result = harness.WorkerResult(
                    exit_code=max(r.exit_code for r in results),
                    wall_s=max(r.wall_s for r in results),
                    cpu_s=sum(r.cpu_s for r in results),
                    max_rss_mb=max(r.max_rss_mb for r in results),
                    log_tail="\n".join(r.log_tail for r in results),
                )
            extra = {} if profile else {"worker": result.cpu_s}
            usage = sampler.stop(extra_cpu=extra)
        stats = await drain_stats(url)
    if result.exit_code != 0 or stats["completed"] != items:
        log(f"WARNING: {label}: exit {result.exit_code}, {stats}; log tail:\n{result.log_tail}")
    rate = stats["completed"] / stats["span_s"] if stats["span_s"] else 0.0
    per_item_ms = {group: round(1000 * cpu / max(stats["completed"], 1), 3)
                   for group, cpu in usage.cpu_s.items()}
    row = {
        "label": label, "server": kind, "protocol": protocol, "latency_ms": latency_ms,
        "items": items, "processes": processes,
        "concurrency": concurrency, "batch_size": batch, "caps": caps,
        "completed": stats["completed"], "failed": stats["failed"],
        "remaining": stats["remaining"], "embeddings_complete": stats["embeddings_complete"],
        "span_s": round(stats["span_s"], 3), "items_per_s": round(rate, 1),
        "process_wall_s": round(result.wall_s, 3),
        "items_per_s_process_wall": round(stats["completed"] / result.wall_s, 1),
        "enqueue_s": round(enqueue_s, 3), "exit_code": result.exit_code,
        "worker_cpu_s": round(result.cpu_s, 3), "worker_peak_rss_mb": round(result.max_rss_mb, 1),
        "worker_sampled_peak_rss_mb": round(usage.peak_rss_mb.get("worker", 0.0), 1),
        "cpu_ms_per_item": per_item_ms, "usage": usage.to_json(), "profiled": bool(profile),
        "patches": patches, "git": revision, **result.extra,
    }
    startup_cpu = getattr(args, "startup_cpu_s", 0.0) * processes
    row["worker_cpu_ms_per_item_net"] = round(
        1000 * max(usage.cpu_s.get("worker", 0.0) - startup_cpu, 0.0) / max(stats["completed"], 1),
        3)
    row["startup_cpu_s_subtracted"] = startup_cpu
    bottleneck = [group for group, cpu in usage.cpu_s.items()
                  if group.startswith("server_") and cpu / usage.wall_s > 0.85]
    row["server_saturated"] = bottleneck
    log(f"{label}{' [' + patches + ']' if patches else ''}: {kind}"
        f"{'/' + protocol if protocol != 'hfspace' else ''} {latency_ms:g} ms "
        f"c={concurrency} b={batch}{f' x{processes} processes' if processes > 1 else ''}: "
        f"{row['completed']}/{items} in {row['span_s']} s = {row['items_per_s']} items/s; "
        f"cpu ms/item {per_item_ms}; rss {row['worker_peak_rss_mb']} MB"
        + (f"; SATURATED {bottleneck}" if bottleneck else ""))
    return row


async def scenario_startup(pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    """`drain` on an empty queue: what start-up and shutdown cost the worker."""
    runs = []
    async with pg.database("startup") as url:
        with model_servers("fast", 0) as servers:
            for _ in range(2):
                worker = Worker("drain", worker_env(url, servers, concurrency=args.concurrency,
                                                    batch_size=32),
                                args.log_dir)
                result = await worker.wait(timeout=120)
                runs.append({"wall_s": round(result.wall_s, 3), "cpu_s": round(result.cpu_s, 3),
                             "peak_rss_mb": round(result.max_rss_mb, 1),
                             "exit_code": result.exit_code})
    first_claim = await startup.time_to_first_claim(pg, args.log_dir)
    log(f"startup: {runs}; first claim after {first_claim}")
    return {"runs": runs, "wall_s": min(r["wall_s"] for r in runs),
            "cpu_s": min(r["cpu_s"] for r in runs),
            "peak_rss_mb": min(r["peak_rss_mb"] for r in runs),
            "first_claim": first_claim}


# -- the pieces: decoding and the database side alone ----------------------------------------


async def scenario_paths(pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    import paths

    out: dict[str, Any] = {"decode": paths.decode_costs()}
    log(f"paths: handling an answer, both models, as the daemon does it: "
        f"{out['decode']['daemon_total_us']} us/item; {out['decode']['models']}")
    import httpcost

    out["http"] = []
    for protocol in ["hfspace", *args.drain_protocols]:
        row = await httpcost.http_cost(protocol)
        log(f"paths: CPU per embedding request (bench/httpcost.py): {row}")
        out["http"].append(row)
    out["database"] = []
    for attempt in range(args.repeat):
        row = await paths.database_drain(pg, args.items, args.concurrency, args.batch_size)
        row["attempt"] = attempt + 1
        log(f"paths: database side alone (the daemon's claim and finish): {row}")
        out["database"].append(row)
    return out


# -- profiling -------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for raw_frames, count in breakdown.read_stacks(path):
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" if " (" in f else f for f in raw_frames]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in ranked]

    return {"samples": total, "self_pct": share(own), "inclusive_pct": share(inclusive)}
