"""Where the worker's CPU goes: py-spy's raw stacks folded into a few categories.

Each stack is charged to the first category found walking from its innermost frame outwards, so
a socket write made by asyncpg counts as a socket write, and JSON decoding inside the HTTP client
counts as decoding. The categories are those the issue "Faster per core" measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# (what a frame contains, category), tried in order for each frame from the innermost out.
RULES: tuple[tuple[str, str], ...] = (
    ("_SelectorSocketTransport.write", "socket writes (kernel: loopback TCP)"),
    ("importlib", "imports and start-up"),
    ("embedders/decode.py", "decoding and checking answers"),
    ("embedders/base.py", "decoding and checking answers"),
    ("embedders/openai.py", "decoding and checking answers"),
    ("orjson", "decoding and checking answers"),
    ("simdjson", "decoding and checking answers"),
    ("embedders/transport.py", "HTTP (httpx, aiohttp)"),
    ("aiohttp", "HTTP (httpx, aiohttp)"),
    ("httpx", "HTTP (httpx, aiohttp)"),
    ("httpcore", "HTTP (httpx, aiohttp)"),
    ("anyio", "HTTP (httpx, aiohttp)"),
    ("tenacity", "HTTP (httpx, aiohttp)"),
    ("encode_vector", "asyncpg (claim, finish, vector encoding)"),
    ("asyncpg", "asyncpg (claim, finish, vector encoding)"),
    ("db/queue.py", "asyncpg (claim, finish, vector encoding)"),
    ("text.py", "text cleaning"),
    ("structlog", "logging"),
    # uvloop's loop runs in C under asyncio.Runner.run: waiting in epoll, reading sockets,
    # running callbacks. (A socket write's kernel time, with uvloop, is the self time of the
    # Python frame that wrote: asyncpg's _do_execute, aiohttp's _writelines.)
    ("Runner.run", "event loop (uvloop, in C)"),
    ("worker.py", "worker, batching, asyncio"),
    ("batching.py", "worker, batching, asyncio"),
    ("asyncio", "worker, batching, asyncio"),
)
OTHER = "other"


def read_stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """(frames, outermost first; samples) of each line of py-spy's raw output."""
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack:
            yield stack.split(";"), int(count_text)


def categorize(path: Path) -> list[tuple[str, float]]:
    """Share (%) of the samples per category, largest first."""
    counts: dict[str, int] = {}
    total = 0
    for frames, count in read_stacks(path):
        total += count
        category = _category(frames)
        counts[category] = counts.get(category, 0) + count
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [(name, round(100 * n / max(total, 1), 1)) for name, n in ranked]


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for needle, category in RULES:
            if needle in frame:
                return category
    return OTHER
