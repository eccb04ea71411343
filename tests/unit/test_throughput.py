"""The status page's per-minute throughput ring, on a clock the test moves."""

from __future__ import annotations

import pytest

from embedworker.ops.metrics import Metrics
from embedworker.ops.throughput import Throughput


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_go_into_the_minute_they_happen_in() -> None:
    clock = Clock(600.0)
    ring = Throughput(buckets=5, clock=clock)
    ring.record(3, 1)
    clock.now += 59.9
    ring.record(2, 0)
    clock.now += 0.1
    ring.record(4, 2)

    window = ring.window()

    assert window.bucket_s == 60
    assert window.completed == (0, 0, 0, 5, 4)
    assert window.failed == (0, 0, 0, 1, 2)


def test_old_minutes_fall_off_and_quiet_minutes_are_zero() -> None:
    clock = Clock(0.0)
    ring = Throughput(buckets=3, clock=clock)
    for completed in (1, 2, 3, 4):
        ring.record(completed, 0)
        clock.now += 60
    # Four minutes recorded into a ring of three, then one quiet minute has begun.
    assert ring.window().completed == (3, 4, 0)

    clock.now += 60 * 2
    assert ring.window().completed == (0, 0, 0)


def test_a_gap_longer_than_the_window_clears_everything() -> None:
    clock = Clock(0.0)
    ring = Throughput(buckets=4, clock=clock)
    ring.record(7, 7)
    clock.now += 60 * 1000
    ring.record(1, 0)
    assert ring.window().completed == (0, 0, 0, 1)
    assert ring.window().failed == (0, 0, 0, 0)


def test_a_clock_that_goes_back_counts_into_the_newest_minute() -> None:
    clock = Clock(6000.0)
    ring = Throughput(buckets=3, clock=clock)
    ring.record(1, 0)
    clock.now -= 120
    ring.record(1, 0)
    assert ring.window().completed == (0, 0, 2)


def test_rejects_an_empty_ring() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Throughput(buckets=0)


def test_metrics_feed_the_ring_from_finished_batches() -> None:
    metrics = Metrics(["e5_small"])
    metrics.batch_finished(size=10, completed=7, retrying=2, failed=1, seconds=0.5)
    window = metrics.throughput.window()
    assert window.completed[-1] == 7
    assert window.failed[-1] == 1
    assert len(window.completed) == 60
