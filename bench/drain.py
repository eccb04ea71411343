"""One drain measurement: N queued items, both models, `python -m embedworker drain`.

    python bench/drain.py --items 10000 [--concurrency 8] [--batch-size 32] [--latency-ms 0]
                          [--server fast|standin]

Starts its own embedded PostgreSQL and two model servers on 127.0.0.1 (see bench/run.py for the
"fast" and "standin" servers), runs the worker as a subprocess, and prints one line of JSON:
items/s on the database clock (first claim to last finish), with start-up included, the CPU
milliseconds per item of each process, and the worker's peak RSS. The whole suite is
bench/run.py (`make bench`); this is its drain scenario alone. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import WORKER_CONCURRENCY, Postgres
from scenario_drain import drain_run


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    pg = Postgres()
    try:
        await pg.setup()
        row = await drain_run(pg, args, kind=args.server, latency_ms=args.latency_ms,
                              items=args.items, concurrency=args.concurrency,
                              batch=args.batch_size)
    finally:
        pg.shutdown()
    keep = ("server", "latency_ms", "items", "completed", "concurrency", "batch_size", "span_s",
            "items_per_s", "items_per_s_process_wall", "cpu_ms_per_item", "worker_peak_rss_mb")
    return {key: row[key] for key in keep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--server", choices=("fast", "standin"), default="fast")
    args = parser.parse_args()
    args.log_dir = Path(tempfile.mkdtemp(prefix="embedworker-drain-"))
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
