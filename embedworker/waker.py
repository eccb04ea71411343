"""Wakes idle workers: on NOTIFY, when a scheduled retry falls due, on shutdown, or on a poll."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque


class Waker:
    """Wakes one idle worker per wake-up (a worker that claims a full batch wakes the next),
    so a NOTIFY costs one claim, not one per worker. A wake-up with no worker waiting is kept
    for the next one to wait; a worker clears it just before claiming, so none is lost."""

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pending = False
        self._timers: list[float] = []
        # Set when a model answers again: the items parked waiting for it are to be released.
        self.model_back = asyncio.Event()

    def wake(self) -> None:
        """Wake one idle worker, or the next to wait if none is idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._pending = True

    def wake_all(self) -> None:
        """Wake every idle worker: on shutdown and reload."""
        self._pending = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def wake_at(self, when: float) -> None:
        """Wake at ``when`` (time.monotonic()); used for retries scheduled in the future."""
        heapq.heappush(self._timers, when)

    def next_timer_in(self) -> float | None:
        """Seconds until the earliest timer (0 if one is due), or None without timers."""
        if not self._timers:
            return None
        return max(self._timers[0] - time.monotonic(), 0.0)

    def clear(self) -> None:
        self._pending = False

    async def wait(self, max_wait_s: float) -> str:
        """Wait for a wake-up, a due timer or ``max_wait_s``; says which: notify, timer, poll."""
        if self._pending:
            self._pending = False
            return "notify"
        now = time.monotonic()
        if self._timers and self._timers[0] <= now:
            heapq.heappop(self._timers)
            return "timer"
        timeout = max_wait_s
        timer_first = bool(self._timers) and self._timers[0] - now < max_wait_s
        if timer_first:
            timeout = self._timers[0] - now
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout=max(timeout, 0.0))
        except TimeoutError:
            if self._timers and self._timers[0] <= time.monotonic():
                heapq.heappop(self._timers)
            return "timer" if timer_first else "poll"
        finally:
            if waiter in self._waiters:  # timed out or cancelled: no longer waiting
                self._waiters.remove(waiter)
        return "notify"
