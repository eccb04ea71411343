"""What one running daemon costs, for the Kubernetes resource requests and limits.

    python bench/footprint.py                     # 20k items, models at 0 and 50 ms
    python bench/footprint.py --items 50000 --idle-s 60

Runs `embedworker run` as a subprocess (default settings: concurrency 8, batch 32, with
http_listen, so the observability server is part of it) against an embedded PostgreSQL and
the bench's fast model servers, and reports its RSS and CPU in three phases:

  idle      an empty queue for --idle-s seconds while this script scrapes /metrics every 15 s
            and /healthz every 10 s, as Prometheus and the kubelet would
  drain     --items queued at once, models at 0 ms: the worker as busy as it gets
  model     --items queued at once, models at 50 ms per request: model-bound, as in production

CPU is the worker process's user + system time over the phase's wall time (1.0 = one core);
RSS is sampled every 50 ms (peak) and the kernel's high-water mark is read at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from harness import BENCH, Postgres, Sampler, Worker, enqueue, model_servers, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


async def wait_ready(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(get, f"http://127.0.0.1:{port}/readyz")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def queued_left(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        left: int = await conn.fetchval(
            "SELECT count(*) FROM embedding_queue WHERE status IN ('queued', 'processing')"
        )
        return left
    finally:
        await conn.close()


def phase(sampler: Sampler, worker: psutil.Process, cpu_before: float) -> dict[str, Any]:
    usage = sampler.stop()
    times = worker.cpu_times()
    cpu = times.user + times.system - cpu_before
    return {
        "wall_s": round(usage.wall_s, 1),
        "cpu_cores": round(cpu / usage.wall_s, 3),
        "peak_rss_mb": round(usage.peak_rss_mb["worker"], 1),
    }


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def idle_phase(port: int, worker: psutil.Process, seconds: float) -> dict[str, Any]:
    sampler = Sampler({"worker": lambda: [worker]}).start()
    before = cpu_of(worker)
    started = time.monotonic()
    next_metrics = next_health = started
    while (now := time.monotonic()) - started < seconds:
        if now >= next_metrics:
            await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics")
            next_metrics += 15
        if now >= next_health:
            await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
            next_health += 10
        await asyncio.sleep(0.5)
    return phase(sampler, worker, before)


async def drain_phase(url: str, worker: psutil.Process, items: int, first_id: int
                      ) -> dict[str, Any]:
    sampler = Sampler({"worker": lambda: [worker]}).start()
    before = cpu_of(worker)
    await enqueue(url, items, first_id=first_id)
    while await queued_left(url):  # noqa: ASYNC110 (polls the database, as the bench does)
        await asyncio.sleep(0.25)
    result = phase(sampler, worker, before)
    result["items_per_s"] = round(items / result["wall_s"])
    return result


async def run_scenario(pg: Postgres, latency_ms: float, items: int, idle_s: float
                       ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log_dir = BENCH / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    async with pg.database(f"footprint_{int(latency_ms)}") as url:
        with model_servers("fast", latency_ms) as servers:
            port = free_port()
            env = worker_env(url, servers, concurrency=8, batch_size=32,
                             http_listen=f"127.0.0.1:{port}")
            worker = Worker("run", env, log_dir)
            try:
                await wait_ready(port)
                process = worker.python_process()[0]
                if idle_s:
                    results["idle"] = await idle_phase(port, process, idle_s)
                name = "drain" if latency_ms == 0 else f"model_{int(latency_ms)}ms"
                results[name] = await drain_phase(url, process, items, first_id=1)
            finally:
                worker.terminate()
                outcome = await worker.wait(60)
            results["max_rss_mb"] = round(outcome.max_rss_mb, 1)
            results["exit_code"] = outcome.exit_code
    return results


async def measure() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--idle-s", type=float, default=45.0)
    parser.add_argument("--latencies", default="0,50", help="model latencies in ms")
    args = parser.parse_args()
    pg = Postgres()
    try:
        await pg.setup()
        report: dict[str, Any] = {}
        for index, latency in enumerate(float(x) for x in args.latencies.split(",")):
            report[f"models_at_{int(latency)}ms"] = await run_scenario(
                pg, latency, args.items, args.idle_s if index == 0 else 0
            )
            print(json.dumps(report, indent=2), flush=True)
    finally:
        pg.shutdown()
    return report


if __name__ == "__main__":
    out = Path(BENCH / "results" / "footprint.json")
    out.write_text(json.dumps(asyncio.run(measure()), indent=2) + "\n")
    print(f"written to {out}")
