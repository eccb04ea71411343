"""Items this copy finished per minute over the last hour, for the status page's chart.

A ring of per-minute buckets in memory, on the monotonic clock (a wall-clock step neither
loses nor invents minutes). The newest bucket is the minute in progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

BUCKET_S = 60
BUCKETS = 60


@dataclass(frozen=True)
class ThroughputWindow:
    """Counts per bucket, oldest first; the last bucket is the one still filling."""

    bucket_s: int
    completed: tuple[int, ...]
    failed: tuple[int, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "bucketSeconds": self.bucket_s,
            "completed": list(self.completed),
            "failed": list(self.failed),
        }


class Throughput:
    """Completed and failed items per ``bucket_s`` seconds, the last ``buckets`` of them."""

    def __init__(
        self,
        *,
        buckets: int = BUCKETS,
        bucket_s: int = BUCKET_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if buckets < 1 or bucket_s < 1:
            raise ValueError("buckets and bucket_s must be at least 1")
        self._size = buckets
        self._bucket_s = bucket_s
        self._clock = clock
        self._completed = [0] * buckets
        self._failed = [0] * buckets
        self._newest = self._bucket_now()

    def record(self, completed: int, failed: int) -> None:
        """Count items that ended 'completed' or 'failed' just now."""
        slot = self._advance() % self._size
        self._completed[slot] += completed
        self._failed[slot] += failed

    def window(self) -> ThroughputWindow:
        """The last ``buckets`` buckets, oldest first."""
        newest = self._advance()
        slots = [(newest - self._size + 1 + i) % self._size for i in range(self._size)]
        return ThroughputWindow(
            bucket_s=self._bucket_s,
            completed=tuple(self._completed[slot] for slot in slots),
            failed=tuple(self._failed[slot] for slot in slots),
        )

    def _bucket_now(self) -> int:
        return int(self._clock() // self._bucket_s)

    def _advance(self) -> int:
        """Empty the buckets of the minutes that passed since the newest one; its number."""
        now = self._bucket_now()
        if now > self._newest:
            for bucket in range(max(self._newest + 1, now - self._size + 1), now + 1):
                self._completed[bucket % self._size] = 0
                self._failed[bucket % self._size] = 0
            self._newest = now
        return self._newest
