"""embedworker's benchmark suite ("make bench"; not part of the test suite).

    python bench/run.py                      # the default run: 10k items, about 9 minutes
    python bench/run.py --quick              # smoke run, about 1.5 minutes
    python bench/run.py --items 100000       # drain 100k (or 1000000) items instead of 10k
    python bench/run.py --skip-latency --skip-grid --skip-claim   # leave parts out
    python bench/run.py --only copy,drain    # or name the parts to run (list below)
    python bench/run.py --server standin     # grid, latency, model-bound, claim on the stand-in
    python bench/run.py --repeat 2           # every drain, COPY and model-bound run twice
    python bench/run.py --whatif trace       # extra runs with bench/whatif.py patches
    python bench/run.py --profile            # one more drain under py-spy; prints hot spots

It starts its own embedded PostgreSQL (pgvector) and loopback model servers, runs the worker as
a subprocess (`python -m embedworker drain` or `run`, configured through EMBEDWORKER_* variables)
so that its peak RSS and CPU time are its own and it shares no GIL with the servers, and prints
a table; it writes bench/results/bench.json (everything, per run) and draws
bench/results/bench.png (throughput against concurrency and batch size, model-bound runs, and
where the CPU goes). Every database a scenario uses is a fresh copy of a migrated template.
Worker logs go to bench/results/logs/.

Model servers: "fast" (bench/fastmodel.py) answers the hfspace protocol with pre-encoded vectors
of the same size and JSON formatting as the stand-in's, so it costs almost no CPU and the numbers
are the worker's and the database's; "standin" is embedworker.standin, which computes and
JSON-encodes every vector in Python (~1.5 ms per 1024-dimension input) and, on 2 cores, is the
bottleneck itself. Both are measured alone first. A drain row says "saturated" when a server
process used more than 85 % of a core.

Scenarios (--only takes a comma-separated subset of these names):
  servers   each model server alone: requests/s and items/s at batch 32 and 64, 4 connections,
            a raw HTTP client that does not decode the answers
  startup   `drain` of an empty queue: the worker's start-up wall and CPU time (subtracted from
            the worker's CPU per item elsewhere)
  copy      the ceiling: one binary COPY of the same N rows (both vectors, pgvector's binary
            format, hash, text, flags) into a copy of `embeddings` (LIKE ... INCLUDING ALL),
            best of 3; no JSON decoding and no queue bookkeeping
  drain     N queued items drained by `drain` (concurrency 8, batch 32), models at 0 and
            50 ms, on the fast server and on the stand-in; items/s on the database clock
            (first claim to last finish), the ratio to the COPY ceiling, CPU ms per item of
            every process (worker, PostgreSQL, each server, this script, the rest of the
            machine), the worker's peak RSS (the kernel's high-water mark); then, at 0 ms on
            the fast server, the OpenAI protocol with base64 float32 answers (a binary codec,
            --drain-protocols) and two `drain` processes sharing the queue (--drain-processes)
  paths     the pieces alone (bench/paths.py): CPU per item of handling an answer as the
            daemon does it (orjson.loads, check_vectors to float32, encode_vector; stdlib
            json.loads beside it), and the database side of a drain with no model and no JSON:
            the daemon's own claim and one-statement finish, concurrency 8, batch 32
  grid      the drain at concurrency 1/2/4/8 x batch 16/32/64, models at 0 and 50 ms (the plot)
  latency   a running daemon (`run`, poll 300 s, so only NOTIFY wakes it): 200 single
            inserts on an idle queue, then a trickle of 100 items/s for 20 s; enqueue-to-
            completed p50/p95/p99 on the database clock (updated_at - created_at), split into
            insert -> claim and claim -> finish, and on the client clock (a LISTEN on a bench
            trigger; --latency-client poll polls every 1 ms instead, which loads the machine)
  model     model-bound: models at 200 ms per request, batch caps 64 and 32 (worker batch =
            cap), concurrency 4 and 8; achieved items/s against the nominal capacity = requests
            in flight per model (max_concurrency, 4) x cap / latency, and against what the
            servers give: each server alone at that latency and cap, 4 connections, the raw
            client of `servers` (no decoding), for --model-server-seconds; the slower one
  claim     the claim statement of embedworker/db/queue.py (32 rows) with 0, 10k, 100k and 1M
            rows queued (after VACUUM ANALYZE): EXPLAIN ANALYZE and the client round trip, each
            in a rolled-back transaction, median of 15; then the daemon drains the 1M-row queue
            for 45 s (peak RSS, RSS over time), and the claim is timed again
  trigger   bench/trigger_cost.py (what the NOTIFY trigger and queue_for_embedding add to
            inserts of 10k rows, tracked tables), if it exists, included as it prints
  search    bench/search.py (`make bench-search` runs it alone): embedworker_search() latency
            p50/p99 and recall@10 on 100k rows (20k with --quick), without and with the HNSW
            index the daemon builds, and the build time

Proposed changes are measured without touching embedworker/: --whatif runs extra drains and
model-bound runs with the patches of bench/whatif.py, and --trace times the latency daemon's
claims, model requests and finishes from inside. The patches measured so far (orjson, numpy,
batched, noreset) are the daemon's own behaviour since 83d7381 and c2d7e2b; only trace is left.

Targets (the issue "Fast"), checked at the end: drain at 0 ms >= 1/4 of the COPY ceiling
(stretch 1/2); idle latency p50 <= 15 ms and p99 <= 50 ms (database clock); model-bound >= 90 %
of what the servers give at that latency (at the default concurrency 8; the ratio to the nominal
capacity printed beside it); worker RSS <= 150 MB with 1M queued; claim time at 1M within 2x of
10k. The drain, latency, start-up and RSS runs use the daemon's default concurrency, 8.

Numbers are noisy on a shared 2-core machine: use --repeat 2 (or run twice) and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import breakdown
import harness
import startup
from harness import (
    DEFAULT_CAPS,
    FILLER,
    MODEL_MAX_CONCURRENCY,
    MODELS,
    WORKER_CONCURRENCY,
    Postgres,
    Sampler,
    Worker,
    enqueue,
    median,
    model_servers,
    pctl,
    worker_env,
)

RESULTS = harness.BENCH / "results"
SCENARIOS = ("servers", "startup", "copy", "drain", "paths", "grid", "latency", "model",
             "claim", "trigger", "search")
OPTIONAL = ("profile",)  # only when asked for (--profile or --only profile)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- servers alone ---------------------------------------------------------------------------


async def load_server(url: str, model: str, batch: int, seconds: float,
                      connections: int = MODEL_MAX_CONCURRENCY) -> dict[str, float]:
    """Requests/s a server answers at ``batch`` inputs per request, ``connections`` at once.

    A raw HTTP client that reads the answer without decoding it, so the client costs little.
    """
    parts = urlsplit(url)
    texts = [f"item {i} {FILLER}" for i in range(batch)]
    payload: dict[str, Any] = {"inputs": texts}
    if model == "e5_small":
        payload["task"] = "passage"
    body = json.dumps(payload).encode()
    request = (
        b"POST /embed/batch HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (parts.netloc.encode(), len(body)) + body
    )
    deadline = time.perf_counter() + seconds
    errors = 0

    async def one() -> int:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port,
                                                       limit=1 << 24)
        done = 0
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    requests = sum(counts)
    return {"requests_per_s": requests / elapsed, "items_per_s": requests * batch / elapsed,
            "errors": errors}


async def scenario_servers(args: argparse.Namespace, kinds: list[str]) -> list[dict[str, Any]]:
    out = []
    for kind in kinds:
        for model in MODELS:
            server = harness.ModelServer(kind, model, 64, 0)
            try:
                for batch in args.server_batches:
                    cpu0 = harness._cpu(server.ps)
                    t0 = time.perf_counter()
                    result = await load_server(server.url, model, batch, args.server_seconds)
                    cpu = (harness._cpu(server.ps) - cpu0) / (time.perf_counter() - t0)
                    row = {"kind": kind, "model": model, "batch": batch,
                           "requests_per_s": round(result["requests_per_s"], 1),
                           "items_per_s": round(result["items_per_s"], 1),
                           "ms_per_item": round(1000 * cpu / result["items_per_s"], 3),
                           "server_cpu_cores": round(cpu, 2), "errors": result["errors"]}
                    log(f"servers: {row}")
                    out.append(row)
            finally:
                server.stop()
    return out


def server_capacity(servers: list[dict[str, Any]], kind: str, model: str,
                    batch: int) -> float | None:
    """Items/s the server gives at ``batch`` when it is the only thing running (0 ms), or None
    when the servers scenario did not measure it."""
    for row in servers:
        if (row["kind"], row["model"], row["batch"]) == (kind, model, batch):
            return float(row["items_per_s"])
    return None


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


# -- latency ---------------------------------------------------------------------------------


async def wait_completed(conn: asyncpg.Connection, content_type: str, content_id: int,
                         timeout: float) -> bool:  # noqa: ASYNC109
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        status = await conn.fetchval(
            "SELECT status FROM embedding_queue WHERE content_type = $1 AND content_id = $2",
            content_type, content_id)
        if status == "completed":
            return True
        await asyncio.sleep(0.001)
    return False


# The client clock without polling: a statement trigger on the bench database's queue NOTIFYs
# the keys of the rows a finish completed (one NOTIFY per finish, like the daemon's own trigger).
DONE_TRIGGER = """
CREATE FUNCTION bench_done() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE keys text;
BEGIN
    SELECT string_agg(content_type || ':' || content_id, ',') INTO keys
    FROM bench_new_rows WHERE status = 'completed';
    IF keys IS NOT NULL THEN
        PERFORM pg_notify('bench_done', keys);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_done AFTER UPDATE ON embedding_queue
    REFERENCING NEW TABLE AS bench_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_done();
"""


class Completions:
    """Futures for queue rows, resolved when a NOTIFY on bench_done names them."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    def on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        now = time.perf_counter()
        for key in payload.split(","):
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(now)


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(pctl(ms, 50), 2), "p95_ms": round(pctl(ms, 95), 2),
            "p99_ms": round(pctl(ms, 99), 2), "max_ms": round(max(ms), 2) if ms else None,
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else None}


async def latency_phases(conn: asyncpg.Connection, content_type: str) -> dict[str, Any]:
    """Where an item's latency goes, on the database clock: insert -> claim (NOTIFY, wake-up,
    claim start) and claim -> finish (claim, both models, until the finish starts)."""
    rows = await conn.fetch(
        "SELECT extract(epoch FROM processing_started_at - created_at)::float8 AS to_claim,"
        "       extract(epoch FROM updated_at - processing_started_at)::float8 AS to_finish"
        " FROM embedding_queue WHERE content_type = $1 AND status = 'completed'", content_type)
    return {"insert_to_claim": summary_ms([r["to_claim"] for r in rows]),
            "claim_to_finish": summary_ms([r["to_finish"] for r in rows])}


async def scenario_latency(pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"server": args.server}
    async with pg.database("latency") as url:
        with model_servers(args.server, 0) as servers:
            patches = ",".join(filter(None, [args.latency_whatif, "trace" if args.trace else ""]))
            out["patches"] = args.latency_whatif
            worker = Worker("run", worker_env(url, servers, concurrency=args.latency_concurrency,
                                              batch_size=32),
                            args.log_dir, patches=patches)
            out["concurrency"] = args.latency_concurrency
            sampler = Sampler({"worker": worker.python_process}).start()
            ins = await asyncpg.connect(url)
            poll = await asyncpg.connect(url)
            completions = Completions()
            if args.latency_client == "listen":
                await poll.execute(DONE_TRIGGER)
                await poll.add_listener("bench_done", completions.on_notify)
            try:
                # warm-up: the daemon is up, LISTENing and has each model's connection open
                for n in range(1, 4):
                    await ins.execute("SELECT queue_for_embedding('warmup', $1, $2)", n,
                                      f"warm up {n}")
                    if not await wait_completed(poll, "warmup", n, 60):
                        raise RuntimeError("the daemon did not complete the warm-up item:\n"
                                           + worker.log_path.read_text()[-2000:])
                    await asyncio.sleep(0.5)
                worker.trace_now()  # the warm-up is not part of the trace

                client: list[float] = []
                for n in range(1, args.latency_samples + 1):
                    done = completions.expect(f"idle:{n}")
                    started = time.perf_counter()
                    await ins.execute("SELECT queue_for_embedding('idle', $1, $2)", n,
                                      f"item {n} {FILLER}")
                    if args.latency_client == "listen":
                        try:
                            client.append(await asyncio.wait_for(done, 30) - started)
                        except TimeoutError:
                            log(f"latency: idle item {n} not completed within 30 s")
                    elif args.latency_client == "poll":
                        if await wait_completed(poll, "idle", n, 30):
                            client.append(time.perf_counter() - started)
                        else:
                            log(f"latency: idle item {n} not completed within 30 s")
                    await asyncio.sleep(args.latency_gap_ms / 1000)
                if args.latency_client == "none":
                    await asyncio.sleep(1.0)
                idle_trace = worker.trace_now()
                database = [r["s"] for r in await poll.fetch(
                    "SELECT extract(epoch FROM updated_at - created_at)::float8 AS s"
                    " FROM embedding_queue WHERE content_type = 'idle' AND status = 'completed'")]
                out["idle"] = {"database_clock": summary_ms(database),
                               "client_clock": summary_ms(client),
                               "client": args.latency_client,
                               "gap_ms": args.latency_gap_ms,
                               **await latency_phases(poll, "idle")}
                if idle_trace:
                    out["idle"]["trace"] = idle_trace
                log(f"latency idle: {out['idle']}")

                rate, seconds = args.trickle_rate, args.trickle_seconds
                total = int(rate * seconds)
                if total == 0:
                    return out
                started = time.perf_counter()
                for n in range(1, total + 1):
                    due = started + (n - 1) / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await ins.execute("SELECT queue_for_embedding('trickle', $1, $2)", n,
                                      f"item {n} {FILLER}")
                sent_s = time.perf_counter() - started
                deadline = time.perf_counter() + 60
                while time.perf_counter() < deadline:
                    left = await poll.fetchval(
                        "SELECT count(*) FROM embedding_queue WHERE content_type = 'trickle'"
                        " AND status <> 'completed'")
                    if left == 0:
                        break
                    await asyncio.sleep(0.05)
                database = [r["s"] for r in await poll.fetch(
                    "SELECT extract(epoch FROM updated_at - created_at)::float8 AS s"
                    " FROM embedding_queue WHERE content_type = 'trickle'"
                    " AND status = 'completed'")]
                out["trickle"] = {"database_clock": summary_ms(database), "items": total,
                                  **await latency_phases(poll, "trickle"),
                                  "completed": len(database),
                                  "achieved_insert_rate": round(total / sent_s, 1),
                                  "rate": rate, "seconds": seconds}
                log(f"latency trickle: {out['trickle']}")
            finally:
                await ins.close()
                await poll.close()
                worker.terminate()
                result = await worker.wait(timeout=60)
                usage = sampler.stop(extra_cpu={"worker": result.cpu_s})
                out["worker_peak_rss_mb"] = round(result.max_rss_mb, 1)
                out["worker_exit_code"] = result.exit_code
                if "trace" in result.extra and "trickle" in out:
                    out["trickle"]["trace"] = result.extra["trace"]
                out["usage"] = usage.to_json()
    return out


# -- model-bound -----------------------------------------------------------------------------


async def measure_servers_at(args: argparse.Namespace, cap: int,
                             latency: float) -> dict[str, float]:
    """Items/s each server gives alone at ``cap`` inputs per request and ``latency`` ms, with
    the worker's requests in flight per model (MODEL_MAX_CONCURRENCY) from the raw client: what
    the worker could get at most, the cost of moving the answers included."""
    out = {}
    for model in MODELS:
        server = harness.ModelServer(args.server, model, cap, latency)
        try:
            result = await load_server(server.url, model, cap, args.model_server_seconds,
                                       connections=MODEL_MAX_CONCURRENCY)
        finally:
            server.stop()
        out[model] = round(result["items_per_s"], 1)
        if result["errors"]:
            log(f"model-bound: {model} server at cap {cap}: {result['errors']} errors")
    return out


async def scenario_model(pg: Postgres, args: argparse.Namespace,
                         servers_alone: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    latency = args.model_latency_ms
    for cap in args.model_caps:
        caps = dict.fromkeys(MODELS, cap)
        capacity_by_model = {m: MODEL_MAX_CONCURRENCY * cap / (latency / 1000) for m in MODELS}
        capacity = min(capacity_by_model.values())
        measured = await measure_servers_at(args, cap, latency)
        servers_give = min(measured.values())
        log(f"model-bound cap {cap}: the servers alone at {latency:g} ms give {measured} items/s"
            f" = {servers_give / capacity:.1%} of the nominal {capacity:.0f}")
        alone = {m: server_capacity(servers_alone, args.server, m, cap) for m in MODELS}
        runs = [(c, "") for c in args.model_concurrency]
        runs += [(c, patches) for patches in args.whatif for c in args.model_concurrency]
        for concurrency, patches in runs:
            for attempt in range(args.repeat):
                row = await drain_run(pg, args, kind=args.server, latency_ms=latency,
                                      items=args.model_items, concurrency=concurrency,
                                      batch=cap, caps=caps, label=f"model_c{concurrency}_b{cap}",
                                      patches=patches)
                row["attempt"] = attempt + 1
                row["capacity_items_per_s"] = round(capacity, 1)
                row["ratio_to_capacity"] = round(row["items_per_s"] / capacity, 3)
                row["server_at_latency_items_per_s"] = measured
                row["server_capacity_items_per_s"] = servers_give
                row["ratio_to_server"] = round(row["items_per_s"] / servers_give, 3)
                row["server_alone_items_per_s"] = alone
                row["server_is_bottleneck"] = [m for m, v in alone.items()
                                               if v is not None and v < capacity]
                log(f"model-bound cap {cap} c={concurrency}: {row['items_per_s']} items/s = "
                    f"{row['ratio_to_server']:.1%} of what the servers give "
                    f"({servers_give:.0f}), {row['ratio_to_capacity']:.1%} of the nominal "
                    f"{capacity:.0f}")
                rows.append(row)
    return rows


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


# -- trigger cost (another engineer's script) ------------------------------------------------


def scenario_trigger(args: argparse.Namespace) -> dict[str, Any] | None:
    script = harness.BENCH / "trigger_cost.py"
    if not script.exists():
        log("trigger: bench/trigger_cost.py does not exist (yet): skipped")
        return None
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                               text=True, timeout=60, cwd=harness.REPO).stdout
    argv = [sys.executable, str(script)]
    if args.quick and "--quick" in help_text:
        argv.append("--quick")
    elif args.quick and "--repeat" in help_text:
        argv += ["--repeat", "1"]
    log(f"trigger: {' '.join(argv[1:])}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                              cwd=harness.REPO)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    parsed: Any = None
    for candidate in (done.stdout, *reversed(done.stdout.strip().splitlines())):
        try:
            parsed = json.loads(candidate)
            break
        except ValueError:
            continue
    return {"argv": argv[1:], "exit_code": done.returncode, "json": parsed,
            "stdout": done.stdout[-6000:], "stderr": done.stderr[-2000:]}


# -- search: bench/search.py, a module of its own ---------------------------------------------


def scenario_search(args: argparse.Namespace) -> dict[str, Any]:
    """bench/search.py in a process of its own (it starts its own PostgreSQL)."""
    out = args.out / "search.json"
    argv = [sys.executable, str(harness.BENCH / "search.py"), "--out", str(out)]
    if args.quick:
        argv += ["--rows", "20000", "--queries", "50", "--exact-queries", "10"]
    log(f"search: {' '.join(argv[1:])}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=harness.REPO)
    table = [line for line in done.stdout.splitlines() if not line.startswith("[")]
    return {"argv": argv[1:], "exit_code": done.returncode, "table": "\n".join(table),
            "stderr": done.stderr[-2000:]}


# -- the pieces: decoding and the database side alone ----------------------------------------


async def scenario_paths(pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    import paths

    out: dict[str, Any] = {"decode": paths.decode_costs()}
    log(f"paths: handling an answer, both models, as the daemon does it: "
        f"{out['decode']['daemon_total_us']} us/item; {out['decode']['models']}")
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


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="embedworker benchmark suite",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--items", type=int, default=None,
                        help="items queued for the drain and COPY (default 10000; quick 2000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios: {','.join(SCENARIOS)}")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-claim", action="store_true")
    parser.add_argument("--server", choices=("fast", "standin"), default="fast",
                        help="model server for the grid, latency, model-bound and claim runs")
    parser.add_argument("--drain-servers", default=None,
                        help="servers the drain is measured on (default fast,standin; fast only "
                             "above 100k items: the stand-in drains ~300 items/s)")
    parser.add_argument("--drain-protocols", default="openai",
                        help="extra drains (fast server, 0 ms) over other protocols than "
                             "hfspace: 'openai' answers base64 float32 (a binary codec); '' "
                             "for none")
    parser.add_argument("--drain-processes", type=ints, default=[2],
                        help="extra drains (fast server, 0 ms) by this many `drain` processes "
                             "at once, sharing the queue (default 2: the second core)")
    parser.add_argument("--latencies", type=ints, default=[0, 50],
                        help="model latencies (ms) of the drain and the grid")
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY,
                        help=f"of the drain, the paths' database side, the start-up and RSS runs "
                             f"(default {WORKER_CONCURRENCY}, the daemon's default)")
    parser.add_argument("--batch-size", type=int, default=32, help="of the drain")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repetitions of the drain, COPY and model-bound runs")
    parser.add_argument("--grid-concurrency", type=ints, default=None)
    parser.add_argument("--grid-batches", type=ints, default=None)
    parser.add_argument("--grid-items", type=int, default=None)
    parser.add_argument("--latency-samples", type=int, default=None)
    parser.add_argument("--latency-gap-ms", type=float, default=50.0)
    parser.add_argument("--latency-client", choices=("listen", "poll", "none"), default="listen",
                        help="how the client clock sees completion: LISTEN on a bench trigger "
                             "(default), polling every 1 ms, or not at all (database clock only)")
    parser.add_argument("--trickle-rate", type=float, default=100.0)
    parser.add_argument("--trickle-seconds", type=float, default=None)
    parser.add_argument("--model-latency-ms", type=float, default=200.0)
    parser.add_argument("--model-caps", type=ints, default=None)
    parser.add_argument("--model-concurrency", type=ints, default=None)
    parser.add_argument("--model-items", type=int, default=None)
    parser.add_argument("--model-server-seconds", type=float, default=None,
                        help="how long each server alone is loaded at the model-bound latency "
                             "(its measured capacity; default 6, quick 3)")
    parser.add_argument("--claim-sizes", type=ints, default=None)
    parser.add_argument("--claim-runs", type=int, default=15)
    parser.add_argument("--rss-seconds", type=float, default=None,
                        help="how long the daemon drains the largest claim queue (RSS)")
    parser.add_argument("--server-seconds", type=float, default=None)
    parser.add_argument("--server-batches", type=ints, default=[32, 64])
    parser.add_argument("--whatif", type=lambda t: [x for x in t.split(";") if x], default=[],
                        help="extra drain and model-bound runs with bench/whatif.py patches: "
                             "';'-separated sets of ','-separated patch names (there is only "
                             "'trace' now: orjson, numpy, batched and noreset were adopted)")
    parser.add_argument("--latency-concurrency", type=int, default=WORKER_CONCURRENCY,
                        help=f"the latency daemon's concurrency (default {WORKER_CONCURRENCY}, "
                             "the daemon's default)")
    parser.add_argument("--latency-whatif", default="",
                        help="bench/whatif.py patches for the latency daemon (see --trace)")
    parser.add_argument("--trace", action="store_true",
                        help="trace the latency daemon's claims, model requests and finishes "
                             "(bench/whatif.py trace)")
    parser.add_argument("--profile", action="store_true",
                        help="one more drain (fast, 0 ms) under py-spy; prints the hot spots")
    parser.add_argument("--profile-whatif", default="",
                        help="bench/whatif.py patches for the profiled drain")
    parser.add_argument("--profile-protocol", type=lambda t: [x for x in t.split(",") if x],
                        default=["hfspace", "openai"],
                        help="the profiled drains' protocols (default hfspace,openai)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra environment variable for every worker process "
                             "(repeatable), e.g. MALLOC_MMAP_THRESHOLD_=131072")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick

    def default(name: str, normal: Any, fast: Any) -> None:
        if getattr(args, name) is None:
            setattr(args, name, fast if quick else normal)

    default("items", 10000, 2000)
    default("grid_concurrency", [1, 2, 4, 8], [1, WORKER_CONCURRENCY])
    default("grid_batches", [16, 32, 64], [32])
    default("grid_items", 2000, 1000)
    default("latency_samples", 200, 40)
    default("trickle_seconds", 20.0, 5.0)
    default("model_caps", [64, 32], [32])
    default("model_concurrency", [4, WORKER_CONCURRENCY], [WORKER_CONCURRENCY])
    default("model_items", 5000, 1500)
    default("model_server_seconds", 6.0, 3.0)
    default("claim_sizes", [0, 10000, 100000, 1000000], [0, 10000, 100000])
    default("rss_seconds", 45.0, 5.0)
    default("server_seconds", 3.0, 1.0)
    args.only = [s for s in args.only.split(",") if s]
    for skip, name in ((args.skip_latency, "latency"), (args.skip_grid, "grid"),
                       (args.skip_claim, "claim")):
        if skip and name in args.only:
            args.only.remove(name)
    if args.profile and "profile" not in args.only:
        args.only.append("profile")
    unknown = set(args.only) - set(SCENARIOS) - set(OPTIONAL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.drain_servers is None:
        args.drain_servers = "fast,standin" if args.items <= 100_000 else "fast"
    args.drain_servers = [s for s in args.drain_servers.split(",") if s]
    args.drain_protocols = [p for p in args.drain_protocols.split(",") if p and p != "hfspace"]
    args.drain_processes = [n for n in args.drain_processes if n > 1]
    for item in args.worker_env:
        key, _, value = item.partition("=")
        harness.EXTRA_WORKER_ENV[key] = value
    return args


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(), "load_avg_at_start": os.getloadavg(),
            "git": harness.git_revision(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import report

    args.out.mkdir(parents=True, exist_ok=True)
    args.log_dir = args.out / "logs"
    shutil.rmtree(args.log_dir, ignore_errors=True)
    args.log_dir.mkdir(parents=True)
    results: dict[str, Any] = {"environment": environment(), "options": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    log("starting the embedded PostgreSQL")
    pg = Postgres()
    try:
        await pg.setup()
        results["environment"]["postgres"] = await pg.settings()
        kinds = sorted({args.server, *args.drain_servers})
        if "servers" in args.only:
            results["servers_alone"] = await scenario_servers(args, kinds)
        servers_alone = results.get("servers_alone", [])
        if "startup" in args.only:
            results["startup"] = await scenario_startup(pg, args)
            args.startup_cpu_s = results["startup"]["cpu_s"]
        if "copy" in args.only:
            results["copy"] = await scenario_copy(pg, args.items, max(args.repeat, 3))
        if "drain" in args.only:
            rows = []
            for kind in args.drain_servers:
                for latency in args.latencies:
                    for attempt in range(args.repeat):
                        row = await drain_run(pg, args, kind=kind, latency_ms=latency,
                                              items=args.items, concurrency=args.concurrency,
                                              batch=args.batch_size, label=f"drain_{kind}")
                        row["attempt"] = attempt + 1
                        rows.append(row)
            for protocol in args.drain_protocols:
                for attempt in range(args.repeat):
                    row = await drain_run(pg, args, kind="fast", latency_ms=0,
                                          items=args.items, concurrency=args.concurrency,
                                          batch=args.batch_size, label=f"drain_{protocol}",
                                          protocol=protocol)
                    row["attempt"] = attempt + 1
                    rows.append(row)
            for processes in args.drain_processes:
                for protocol in ["hfspace", *args.drain_protocols]:
                    for attempt in range(args.repeat):
                        row = await drain_run(pg, args, kind="fast", latency_ms=0,
                                              items=args.items, concurrency=args.concurrency,
                                              batch=args.batch_size, label="drain_processes",
                                              processes=processes, protocol=protocol)
                        row["attempt"] = attempt + 1
                        rows.append(row)
            for patches in args.whatif:
                for latency in args.latencies:
                    for attempt in range(args.repeat):
                        row = await drain_run(pg, args, kind="fast", latency_ms=latency,
                                              items=args.items, concurrency=args.concurrency,
                                              batch=args.batch_size, label="whatif",
                                              patches=patches)
                        row["attempt"] = attempt + 1
                        rows.append(row)
            results["drain"] = rows
        if "paths" in args.only:
            results["paths"] = await scenario_paths(pg, args)
        if "profile" in args.only and shutil.which(harness.py_spy()) is None:
            log("profile: py-spy is not installed (pip install py-spy): skipped")
        elif "profile" in args.only:
            profiles = {}
            for protocol in args.profile_protocol:
                profile = args.out / f"profile-drain-{protocol}.txt"
                row = await drain_run(pg, args, kind="fast", latency_ms=0, items=args.items,
                                      concurrency=args.concurrency, batch=args.batch_size,
                                      label="profile", profile=profile,
                                      patches=args.profile_whatif, protocol=protocol)
                if profile.exists():
                    row["profile"] = summarize_profile(profile)
                    row["breakdown"] = breakdown.categorize(profile)
                profiles[protocol] = row
            results["profile"] = profiles
        if "grid" in args.only:
            grid = []
            for latency in args.latencies:
                for concurrency in args.grid_concurrency:
                    for batch in args.grid_batches:
                        grid.append(await drain_run(
                            pg, args, kind=args.server, latency_ms=latency,
                            items=args.grid_items, concurrency=concurrency, batch=batch,
                            label=f"grid_c{concurrency}_b{batch}"))
            results["grid"] = grid
        if "latency" in args.only:
            results["latency"] = await scenario_latency(pg, args)
        if "model" in args.only:
            results["model_bound"] = await scenario_model(pg, args, servers_alone)
        if "claim" in args.only:
            results["claim"] = await scenario_claim(pg, args)
    finally:
        pg.shutdown()
    if "trigger" in args.only:
        results["trigger_cost"] = scenario_trigger(args)
    if "search" in args.only:
        results["search"] = scenario_search(args)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    try:
        results["targets"] = report.targets(results)
    except Exception as exc:  # a report bug must not lose the measurements
        log(f"could not check the targets: {exc!r}")
    return results


def main(argv: list[str] | None = None) -> int:
    import report

    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    json_path = args.out / "bench.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    print(report.table(results))
    try:
        png = report.plot(results, args.out / "bench.png")
    except Exception as exc:  # the plot is the least important output
        log(f"could not draw the plot: {exc!r}")
        png = None
    print(f"\nwrote {json_path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
