"""Start-up: how soon a daemon told to start claims its first item.

`python -m embedworker run` is spawned with one item already queued; the time from the spawn
to the claim is the claim's own `processing_started_at` (the database's clock, on this machine)
minus the wall-clock time of the spawn. The process is then stopped like systemd would.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
from harness import Postgres, Worker, enqueue, median, model_servers, worker_env

CLAIM_TIMEOUT_S = 30.0


async def time_to_first_claim(pg: Postgres, log_dir: Path, runs: int = 5) -> dict[str, Any]:
    seconds: list[float] = []
    async with pg.database("first_claim") as url:
        conn = await asyncpg.connect(url)
        try:
            with model_servers("fast", 0) as servers:
                for run in range(1, runs + 1):
                    await enqueue(url, 1, first_id=run)
                    env = worker_env(url, servers, concurrency=8, batch_size=32)
                    spawned = time.time()
                    worker = Worker("run", env, log_dir)
                    try:
                        claimed = await _claimed_at(conn, run)
                    finally:
                        worker.terminate()
                        await worker.wait(timeout=60)
                    seconds.append(claimed - spawned)
        finally:
            await conn.close()
    return {"runs_s": [round(s, 3) for s in seconds], "median_s": round(median(seconds), 3),
            "max_s": round(max(seconds), 3)}


async def _claimed_at(conn: asyncpg.Connection, content_id: int) -> float:
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while time.monotonic() < deadline:
        claimed = await conn.fetchval(
            "SELECT extract(epoch FROM processing_started_at)::float8 FROM embedding_queue"
            " WHERE content_id = $1", content_id)
        if claimed is not None:
            return float(claimed)
        await asyncio.sleep(0.005)
    raise TimeoutError(f"item {content_id} was not claimed within {CLAIM_TIMEOUT_S} s")
