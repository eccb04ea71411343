"""Helpers for tests: waiting on conditions, reading rows, the expected vectors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import numpy as np
import numpy.typing as npt

from embedworker.config import Settings
from embedworker.db.connect import encode_vector
from embedworker.service import Service
from embedworker.standin import TASK_PREFIXES, deterministic_vector


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def expected_e5(text: str) -> list[float]:
    """The vector the stand-in e5 server gives for a passage (it adds the prefix itself)."""
    return deterministic_vector("e5_small", TASK_PREFIXES["passage"] + text, 384)


def expected_bge(text: str) -> list[float]:
    return deterministic_vector("bge_m3", text, 1024)


def close_to(stored: object, expected: list[float], tolerance: float = 1e-6) -> bool:
    """A vector read back from pgvector (float32) equals ``expected`` within ``tolerance``."""
    values = stored.to_list() if hasattr(stored, "to_list") else list(stored)  # type: ignore[call-overload]
    return len(values) == len(expected) and all(
        abs(a - b) <= tolerance for a, b in zip(values, expected, strict=True)
    )


async def statuses(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM embedding_queue GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


async def insert_items(
    conn: asyncpg.Connection,
    texts: list[str],
    *,
    content_type: str = "post",
    priority: int = 5,
    first_id: int = 1,
) -> list[int]:
    """Plain INSERTs the way Studify's seed does it; returns the queue ids."""
    rows = await conn.fetch(
        """
        INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,
                                     priority, status)
        SELECT $1, $4 + n - 1, t, md5(t), $2, 'queued'
        FROM unnest($3::text[]) WITH ORDINALITY AS u(t, n)
        RETURNING id
        """,
        content_type,
        priority,
        texts,
        first_id,
    )
    return [row["id"] for row in rows]


@asynccontextmanager
async def running_daemon(settings: Settings) -> AsyncIterator[Service]:
    """The daemon in this event loop (ready: database and LISTEN up); stopped, and its exit
    code checked, on the way out."""
    service = Service(settings)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.ready.wait(), 20)
        yield service
    finally:
        service.request_stop()
        assert await asyncio.wait_for(task, 30) == 0


def unit_vectors(count: int, seed: int, dim: int = 384) -> npt.NDArray[np.float32]:
    """``count`` random unit vectors (reproducible from ``seed``)."""
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def insert_embeddings(
    conn: asyncpg.Connection,
    vectors: npt.NDArray[np.float32],
    *,
    column: str = "embedding_e5_small",
    flag_column: str = "has_e5_embedding",
    content_types: list[str] | None = None,
    first_id: int = 1,
    flag: bool | None = True,
    versions: str = "{}",
    deleted: bool = False,
) -> None:
    """embeddings rows with ``vectors`` in ``column`` (texts "text <id>"), written directly.
    ``conn`` needs embedworker's vector codec (``connect(url, vectors=True)``)."""
    types = content_types or ["post"] * len(vectors)
    await conn.execute(
        f"""
        INSERT INTO embeddings (content_type, content_id, content_text, content_hash,
                                {column}, {flag_column}, embedding_versions, is_deleted)
        SELECT t, id, 'text ' || id, md5(id::text), v, $4, $5::jsonb, $6
        FROM unnest($1::text[], $2::bigint[], $3::vector[]) AS u(t, id, v)
        """,
        list(types), list(range(first_id, first_id + len(vectors))),
        [encode_vector(vector) for vector in vectors], flag, versions, deleted,
    )


@contextmanager
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 that another socket listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port: int = taken.getsockname()[1]
        yield port
