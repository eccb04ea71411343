"""Wakes idle workers: on NOTIFY, when a scheduled retry falls due, on shutdown, or on a poll."""

from __future__ import annotations

import asyncio
import heapq
import time


class Waker:
    """An event plus timers. A worker clears it before claiming, so no wake-up is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._timers: list[float] = []

    def wake(self) -> None:
        self._event.set()

    def wake_at(self, when: float) -> None:
        """Wake at ``when`` (time.monotonic()); used for retries scheduled in the future."""
        heapq.heappush(self._timers, when)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, max_wait_s: float) -> str:
        """Wait for a wake-up, a due timer or ``max_wait_s``; says which: notify, timer, poll."""
        now = time.monotonic()
        if self._timers and self._timers[0] <= now:
            heapq.heappop(self._timers)
            return "timer"
        timeout = max_wait_s
        timer_first = bool(self._timers) and self._timers[0] - now < max_wait_s
        if timer_first:
            timeout = self._timers[0] - now
        try:
            await asyncio.wait_for(self._event.wait(), timeout=max(timeout, 0.0))
        except TimeoutError:
            return "timer" if timer_first else "poll"
        return "notify"
