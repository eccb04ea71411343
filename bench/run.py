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
            json.loads beside it), the CPU of one embedding request by way of sending it
            (bench/httpcost.py: the daemon's ServerClient.post, httpx's client.stream over the
            same transport, aiohttp alone), and the database side of a drain with no model
            and no JSON:
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
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import breakdown
import harness
from harness import WORKER_CONCURRENCY, Postgres, log
from scenario_claim import scenario_claim
from scenario_drain import (
    drain_run,
    scenario_copy,
    scenario_paths,
    scenario_startup,
    summarize_profile,
)
from scenario_latency import scenario_latency
from scenario_model import scenario_model, scenario_servers
from scenario_scripts import scenario_search, scenario_trigger

RESULTS = harness.BENCH / "results"
SCENARIOS = ("servers", "startup", "copy", "drain", "paths", "grid", "latency", "model",
             "claim", "trigger", "search")
OPTIONAL = ("profile",)  # only when asked for (--profile or --only profile)


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
                for protocol in ["hfspace", *args.drain_protocols]:
                    for latency in args.latencies:
                        for attempt in range(args.repeat):
                            row = await drain_run(pg, args, kind="fast", latency_ms=latency,
                                                  items=args.items,
                                                  concurrency=args.concurrency,
                                                  batch=args.batch_size, label="whatif",
                                                  patches=patches, protocol=protocol)
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
