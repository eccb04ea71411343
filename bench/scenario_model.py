"""The model servers in bench/run.py: each server alone (the raw client of `servers`) and the
model-bound drains, compared with what the servers give at that latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import harness
from harness import FILLER, MODEL_MAX_CONCURRENCY, MODELS, Postgres, log
from scenario_drain import drain_run

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
