"""Connections: a pool with pgvector's binary codec, and waiting for a database to come up."""

from __future__ import annotations

import asyncio
import random
import struct
from contextlib import suppress
from typing import Any

import asyncpg
import structlog
from pgvector import Vector

log = structlog.get_logger(__name__)

# Errors that mean "the database is not there (yet)", as opposed to a mistake of ours.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    # asyncpg's protocol state after a connection broke mid-query
    asyncpg.InternalClientError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

# Any failure of a statement, the database's own errors included.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, asyncpg.PostgresError)

CONNECT_TIMEOUT_S = 10.0


async def connect(dsn: str, *, vectors: bool = False) -> asyncpg.Connection:
    """One connection; with ``vectors`` the pgvector codec is registered on it."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    if vectors:
        await register_vectors(conn)
    return conn


async def create_pool(dsn: str, max_size: int) -> asyncpg.Pool:
    """A small pool whose connections encode and decode vectors in pgvector's binary format.

    Nothing of embedworker leaves session state on a pool connection (LISTEN has a connection
    of its own, advisory locks are taken on single connections), so a connection going back to
    the pool skips asyncpg's reset query: one round trip less per statement. An open
    transaction is still rolled back by asyncpg itself.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=register_vectors,
        reset=_keep_session,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=60,
    )


async def register_vectors(conn: Any) -> None:
    """pgvector's binary codec of ``vector``, with a faster encoder for the float32 arrays the
    worker writes. Only ``vector``: embedworker uses no other pgvector type, and each type
    registered costs every new connection a query."""
    await conn.set_type_codec(
        "vector",
        encoder=_encode_parameter,
        decoder=Vector.from_binary,
        format="binary",
    )


def encode_vector(value: Any) -> bytes:
    """pgvector's binary format: dimension, a reserved zero, big-endian float32 values.

    ``value``: a one-dimensional numpy array (the worker's vectors), a list of floats or a
    pgvector Vector. Parameters of type vector (or vector[], whose elements asyncpg would
    otherwise take for nested arrays) may be passed encoded like this.
    """
    if isinstance(value, Vector):
        return value.to_binary()
    if isinstance(value, list):
        return Vector(value).to_binary()
    # A numpy array, told apart without importing numpy, which `run` loads after its first claim.
    if getattr(value, "ndim", None) != 1:
        raise ValueError("a vector is a list, a pgvector Vector or a one-dimensional array")
    values: bytes = value.astype(">f4", copy=False).tobytes()
    return _VECTOR_HEADER.pack(len(value), 0) + values


def _encode_parameter(value: Any) -> bytes:
    return value if isinstance(value, bytes) else encode_vector(value)


_VECTOR_HEADER = struct.Struct(">HH")


async def _keep_session(conn: Any) -> None:
    return None


async def wait_for_database(
    dsn: str, stopping: asyncio.Event, *, max_delay_s: float = 30.0
) -> asyncpg.Connection | None:
    """Connect, retrying with backoff while the database is unavailable; None if stopped first."""
    delay = 0.5
    while not stopping.is_set():
        try:
            return await connect(dsn)
        except asyncpg.ClientConfigurationError:
            raise  # a malformed URL is a mistake in the settings: waiting cannot fix it
        except UNAVAILABLE_ERRORS as exc:
            log.warning("database.unavailable", error=describe(exc), retry_in_s=round(delay, 1))
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        delay = min(delay * 2, max_delay_s) * (0.8 + 0.4 * random.random())
    return None


def describe(exc: BaseException) -> str:
    """A one-line reason for logs and error messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
