"""The CPU one embedding request costs the client, by way of sending it.

One bge_m3 request of 32 inputs to the fast server (0 ms), awaited one after another, with the
CPU time (user + system) of this process per request:

  post          embedworker's ServerClient.post: the request handed to the transport directly
  httpx stream  the same transport under httpx.AsyncClient.stream (what the daemon did before)
  aiohttp       aiohttp's ClientSession alone: the floor under any httpx transport over it

The answer is read whole and not decoded, so only the HTTP path is measured.
"""

from __future__ import annotations

import resource
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson
from harness import ModelServer, median

from embedworker.embedders.http import ServerClient
from embedworker.embedders.transport import AiohttpTransport

PATHS = {"hfspace": "/embed/batch", "openai": "/v1/embeddings"}
JSON = {"Content-Type": "application/json"}


def _payload(protocol: str) -> bytes:
    texts = [f"text number {n} about a course on linear algebra" for n in range(32)]
    if protocol == "openai":
        return orjson.dumps({"model": "bge-m3", "input": texts, "encoding_format": "base64"})
    return orjson.dumps({"inputs": texts})


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _us_per_request(send: Callable[[], Awaitable[bytes]], requests: int) -> float:
    for _ in range(20):  # connections opened, caches warm
        await send()
    started = _cpu_s()
    for _ in range(requests):
        await send()
    return 1e6 * (_cpu_s() - started) / requests


async def http_cost(protocol: str, requests: int = 1000, rounds: int = 3) -> dict[str, Any]:
    """Median CPU µs per request of each way, over ``rounds`` alternating rounds."""
    server = ModelServer("fast", "bge_m3", 32, 0, protocol=protocol)
    path, body = PATHS[protocol], _payload(protocol)
    ours = ServerClient(server.url, 60.0, None)
    transport = AiohttpTransport(max_connections=8)
    client = httpx.AsyncClient(base_url=server.url, transport=transport)
    session = aiohttp.ClientSession()

    async def post() -> bytes:
        return await ours.post(path, body)

    async def httpx_stream() -> bytes:
        async with client.stream("POST", path, content=body, headers=JSON) as response:
            return await response.aread()

    async def aiohttp_alone() -> bytes:
        async with session.post(server.url + path, data=body, headers=JSON) as response:
            return await response.read()

    ways = {"post": post, "httpx stream": httpx_stream, "aiohttp": aiohttp_alone}
    seen: dict[str, list[float]] = {name: [] for name in ways}
    try:
        answer_bytes = len(await post())
        for _ in range(rounds):
            for name, send in ways.items():
                seen[name].append(await _us_per_request(send, requests))
    finally:
        await ours.aclose()
        await client.aclose()
        await session.close()
        server.stop()
    return {
        "protocol": protocol,
        "answer_bytes": answer_bytes,
        "us_per_request": {name: round(median(values), 1) for name, values in seen.items()},
        "rounds": {name: [round(v, 1) for v in values] for name, values in seen.items()},
    }
