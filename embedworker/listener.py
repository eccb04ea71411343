"""The dedicated LISTEN connection: wakes the workers, reconnects, and checks itself."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import structlog

from embedworker.db.connect import describe, wait_for_database
from embedworker.waker import Waker

log = structlog.get_logger(__name__)

PROBE_PREFIX = "embedworker-probe:"


class Listener:
    """LISTENs on ``channel``; a NOTIFY to itself every ``probe_interval_s`` proves it works.

    While it is not known to work (``healthy`` is False) the workers poll often instead.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        waker: Waker,
        *,
        probe_interval_s: float = 5.0,
        probe_timeout_s: float = 5.0,
    ):
        self._dsn = dsn
        self._channel = channel
        self._waker = waker
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._probe_token = ""
        self._probe_seen = asyncio.Event()
        self.healthy = False
        self.connected = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Listen until ``stopping`` is set, reconnecting whenever the connection fails."""
        while not stopping.is_set():
            conn = await wait_for_database(self._dsn, stopping)
            if conn is None:
                return
            try:
                await conn.add_listener(self._channel, self._on_notification)
                self.healthy = True
                self.connected.set()
                log.info("listener.listening", channel=self._channel)
                # Anything queued while we were not listening is due now.
                self._waker.wake()
                await self._probe_until_broken(conn, stopping)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listener.lost", error=describe(exc))
            finally:
                self.healthy = False
                await _close_quietly(conn)
            if not stopping.is_set():
                self._waker.wake()

    async def _probe_until_broken(self, conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self._probe_interval_s)
                return
            except TimeoutError:
                pass
            self._probe_token = PROBE_PREFIX + uuid.uuid4().hex
            self._probe_seen.clear()
            await asyncio.wait_for(
                conn.execute("SELECT pg_notify($1, $2)", self._channel, self._probe_token),
                timeout=self._probe_timeout_s,
            )
            try:
                await asyncio.wait_for(self._probe_seen.wait(), timeout=self._probe_timeout_s)
            except TimeoutError:
                log.warning("listener.probe_missed", channel=self._channel)
                return

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        if payload.startswith(PROBE_PREFIX):
            if payload == self._probe_token:
                self._probe_seen.set()
            return
        self._waker.wake()


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=2.0)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()
