"""Per-model rate limits: requests per second and inputs per minute, as token buckets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Holds up to ``capacity`` tokens, refilled at ``rate`` per second."""

    def __init__(
        self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic
    ):
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` tokens (at most a full bucket) are there; 0 if now."""
        self._refill()
        missing = min(amount, self.capacity) - self._tokens
        return max(missing / self.rate, 0.0)

    def take(self, amount: float) -> None:
        self._refill()
        self._tokens -= min(amount, self.capacity)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now


class RateLimiter:
    """Waits, first come first served, until a request of ``n`` inputs fits both limits."""

    def __init__(
        self,
        requests_per_s: float | None,
        inputs_per_min: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        # (bucket, counts inputs rather than requests)
        self._buckets: list[tuple[TokenBucket, bool]] = []
        if requests_per_s:
            per_second = TokenBucket(requests_per_s, max(requests_per_s, 1.0), clock=clock)
            self._buckets.append((per_second, False))
        if inputs_per_min:
            per_minute = TokenBucket(inputs_per_min / 60, inputs_per_min, clock=clock)
            self._buckets.append((per_minute, True))
        self._lock = asyncio.Lock()

    async def acquire(self, inputs: int) -> None:
        if not self._buckets:
            return
        async with self._lock:
            while True:
                wait = max(bucket.wait_s(inputs if per_input else 1)
                           for bucket, per_input in self._buckets)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            for bucket, per_input in self._buckets:
                bucket.take(inputs if per_input else 1)
