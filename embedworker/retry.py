"""Retry policy: pure functions of the attempt number, testable without sleeping."""

from __future__ import annotations

import random


def backoff_delay(
    retry_count: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Seconds before retry number ``retry_count`` (1 for the first retry).

    The delay doubles from ``base_s`` with every retry up to ``cap_s``, then jitter takes up to a
    quarter off, so items that failed together do not come back together.
    """
    exponent = max(retry_count - 1, 0)
    raw = min(cap_s, base_s * 2.0 ** min(exponent, 64))
    return raw * (1.0 - 0.25 * (rng or random).random())
