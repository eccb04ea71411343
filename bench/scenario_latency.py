"""The latency scenario of bench/run.py: a running daemon (`run`), single inserts on an idle
queue and a trickle, timed on the database clock and on the client clock (a LISTEN on a bench
trigger, or polling).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
from harness import FILLER, Postgres, Sampler, Worker, log, model_servers, pctl, worker_env

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
