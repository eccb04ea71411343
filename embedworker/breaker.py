"""Per-model circuit breaker: stop calling a server that is down, probe it, resume."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

import structlog

log = structlog.get_logger(__name__)

PROBE_INTERVAL_MIN_S = 0.5
PROBE_INTERVAL_MAX_S = 30.0


class CircuitBreaker:
    """Open while the model's health endpoint does not answer; a probe closes it again."""

    def __init__(
        self,
        name: str,
        health: Callable[[], Awaitable[bool]],
        *,
        on_open: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ):
        self.name = name
        self._health = health
        self._on_open = on_open
        self._on_close = on_close
        self._closed = asyncio.Event()
        self._closed.set()
        self._probe: asyncio.Task[None] | None = None
        self._opened_at: float | None = None
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    @property
    def open_for_s(self) -> float:
        """Seconds since the breaker opened; 0 while it is closed."""
        if self._opened_at is None or not self.is_open:
            return 0.0
        return time.monotonic() - self._opened_at

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def confirm_outage(self, reason: str) -> bool:
        """After a transient failure: open the breaker if the server is unhealthy.

        Returns True when the server is down (the failure is the server's, not the item's).
        """
        if self.is_open:
            return True
        if await self._health():
            return False
        self.open(reason)
        return True

    def open(self, reason: str, probe: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Stop calls to the model until ``probe`` (by default its health check) succeeds."""
        if self.is_open:
            return
        self.reason = reason
        self._opened_at = time.monotonic()
        self._closed.clear()
        log.warning("model.unavailable", model=self.name, reason=reason)
        if self._on_open is not None:
            self._on_open()
        self._probe = asyncio.create_task(
            self._probe_until(probe or self._health), name=f"probe-{self.name}"
        )

    async def _probe_until(self, probe: Callable[[], Awaitable[bool]]) -> None:
        delay = PROBE_INTERVAL_MIN_S
        while True:
            await asyncio.sleep(delay)
            if await probe():
                break
            delay = min(delay * 2, PROBE_INTERVAL_MAX_S)
        log.info("model.available", model=self.name, after=self.reason)
        self.reason = None
        self._closed.set()
        if self._on_close is not None:
            self._on_close()

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with suppress(asyncio.CancelledError):
                await self._probe
