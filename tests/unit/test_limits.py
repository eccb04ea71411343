"""Rate limits as token buckets, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from embedworker.embedders.limits import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=4.0, clock=clock)
    assert bucket.wait_s(4) == 0
    bucket.take(4)
    assert bucket.wait_s(1) == pytest.approx(0.5)
    clock.now = 1.0
    assert bucket.wait_s(2) == 0
    assert bucket.wait_s(3) == pytest.approx(0.5)


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=10.0, clock=clock)
    bucket.take(10)
    assert bucket.wait_s(50) == pytest.approx(10.0)


async def test_requests_per_second_are_spaced_out() -> None:
    limiter = RateLimiter(requests_per_s=20, inputs_per_min=None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(30):  # 20 in the full bucket, then 10 more at 20 per second
        await limiter.acquire(1)
    assert loop.time() - started >= 0.45


async def test_inputs_per_minute_count_inputs_not_requests() -> None:
    limiter = RateLimiter(requests_per_s=None, inputs_per_min=600)  # 10 inputs per second
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limiter.acquire(600)  # the whole minute's budget at once
    await limiter.acquire(5)  # must wait for 5 inputs: half a second
    assert loop.time() - started >= 0.45


async def test_no_limit_never_waits() -> None:
    limiter = RateLimiter(None, None)
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire(1000) for _ in range(100))), 1)
