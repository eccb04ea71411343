"""Metrics: what the worker's calls turn into, read back from the rendered exposition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from embedworker.db.stats import QueueStatus
from embedworker.embedders import ErrorKind
from embedworker.ops.metrics import Metrics

Labels = frozenset[tuple[str, str]]


def samples(metrics: Metrics) -> dict[tuple[str, Labels], float]:
    """Every sample of ``metrics.render()``, keyed by (sample name, labels)."""
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


def make_status(**overrides: object) -> QueueStatus:
    values: dict[str, object] = {
        "as_of": datetime(2026, 1, 1, tzinfo=UTC),
        "total": 20,
        "by_status": {"queued": 9, "processing": 2, "completed": 6, "failed": 3},
        "by_priority": {5: 20},
        "by_content_type": {"post": 20},
        "due": 5,
        "scheduled_later": 3,
        "stranded": 1,
        "oldest_due_age_s": 42.5,
        "failed_by_error": (("boom", 3),),
        "recent": (),
    }
    values.update(overrides)
    return QueueStatus(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> list[float]:
    return [1_700_000_000.0]


@pytest.fixture
def metrics(clock: list[float]) -> Metrics:
    return Metrics(["e5_small", "bge_m3"], clock=lambda: clock[0])


def test_render_is_prometheus_text(metrics: Metrics) -> None:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {
        "embedworker_items_completed", "embedworker_items_failed", "embedworker_items_retried",
        "embedworker_batch_size", "embedworker_batch_duration_seconds",
        "embedworker_last_batch_timestamp_seconds", "embedworker_model_request_seconds",
        "embedworker_model_errors", "embedworker_model_up", "embedworker_lease_reclaims",
        "embedworker_wakeups", "embedworker_queue_items",
        "embedworker_queue_oldest_due_age_seconds",
    } <= names


def test_batches(metrics: Metrics, clock: list[float]) -> None:
    metrics.batch_finished(size=10, completed=7, retrying=2, failed=1, seconds=0.4)
    clock[0] += 30
    metrics.batch_finished(size=4, completed=0, retrying=3, failed=1, seconds=2.0)

    got = samples(metrics)
    assert got[("embedworker_items_completed_total", frozenset())] == 7
    assert got[("embedworker_items_retried_total", frozenset())] == 5
    assert got[("embedworker_items_failed_total", frozenset())] == 2
    assert got[("embedworker_batch_size_count", frozenset())] == 2
    assert got[("embedworker_batch_size_sum", frozenset())] == 14
    assert got[("embedworker_batch_size_bucket", frozenset({("le", "4.0")}))] == 1
    assert got[("embedworker_batch_size_bucket", frozenset({("le", "8.0")}))] == 1
    assert got[("embedworker_batch_size_bucket", frozenset({("le", "16.0")}))] == 2
    assert got[("embedworker_batch_duration_seconds_count", frozenset())] == 2
    assert got[("embedworker_batch_duration_seconds_sum", frozenset())] == pytest.approx(2.4)
    assert got[("embedworker_batch_duration_seconds_bucket", frozenset({("le", "0.5")}))] == 1
    # the second batch completed nothing, so the timestamp is the first batch's
    assert got[("embedworker_last_batch_timestamp_seconds", frozenset())] == 1_700_000_000.0


def test_last_batch_timestamp_starts_at_zero(metrics: Metrics) -> None:
    metrics.batch_finished(size=3, completed=0, retrying=0, failed=3, seconds=0.1)
    assert value(metrics, "embedworker_last_batch_timestamp_seconds") == 0


def test_model_requests_and_errors(metrics: Metrics) -> None:
    metrics.model_request("e5_small", 0.2, None)
    metrics.model_request("e5_small", 1.5, "transient")
    metrics.model_request("e5_small", 0.3, ErrorKind.TRANSIENT)
    metrics.model_request("bge_m3", 0.1, ErrorKind.MALFORMED)

    got = samples(metrics)

    def errors(model: str, kind: str) -> float:
        return got[("embedworker_model_errors_total",
                    frozenset({("model", model), ("kind", kind)}))]

    assert errors("e5_small", "transient") == 2
    assert errors("bge_m3", "malformed") == 1
    assert errors("e5_small", "too_big") == 0
    assert errors("bge_m3", "per_item") == 0
    e5 = frozenset({("model", "e5_small")})
    assert got[("embedworker_model_request_seconds_count", e5)] == 3
    assert got[("embedworker_model_request_seconds_sum", e5)] == pytest.approx(2.0)
    assert got[("embedworker_model_request_seconds_count", frozenset({("model", "bge_m3")}))] == 1


def test_unknown_error_kind_and_wakeup_reason_are_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="error kind"):
        metrics.model_request("e5_small", 0.1, "oops")
    with pytest.raises(ValueError, match="wake-up reason"):
        metrics.wakeup("because")


def test_model_availability(metrics: Metrics) -> None:
    metrics.model_available("e5_small", True)
    metrics.model_available("bge_m3", True)
    metrics.model_available("bge_m3", False)

    assert value(metrics, "embedworker_model_up", model="e5_small") == 1
    assert value(metrics, "embedworker_model_up", model="bge_m3") == 0


def test_lease_reclaims_and_wakeups(metrics: Metrics) -> None:
    assert value(metrics, "embedworker_lease_reclaims_total", outcome="failed") == 0
    assert value(metrics, "embedworker_wakeups_total", reason="timer") == 0

    metrics.lease_recovered(requeued=3, failed=1)
    metrics.lease_recovered(requeued=2, failed=0)
    for reason in ["notify", "notify", "poll", "notify", "timer"]:
        metrics.wakeup(reason)

    assert value(metrics, "embedworker_lease_reclaims_total", outcome="requeued") == 5
    assert value(metrics, "embedworker_lease_reclaims_total", outcome="failed") == 1
    assert value(metrics, "embedworker_wakeups_total", reason="notify") == 3
    assert value(metrics, "embedworker_wakeups_total", reason="poll") == 1
    assert value(metrics, "embedworker_wakeups_total", reason="timer") == 1


def test_queue_depth(metrics: Metrics) -> None:
    metrics.set_queue_depth(make_status())

    got = samples(metrics)
    for status, count in {"queued": 9, "processing": 2, "completed": 6, "failed": 3}.items():
        assert got[("embedworker_queue_items", frozenset({("status", status)}))] == count
    assert got[("embedworker_queue_queued_items", frozenset({("state", "due")}))] == 5
    assert got[("embedworker_queue_queued_items",
                frozenset({("state", "scheduled_later")}))] == 3
    assert got[("embedworker_queue_queued_items", frozenset({("state", "stranded")}))] == 1
    assert got[("embedworker_queue_oldest_due_age_seconds", frozenset())] == 42.5
    assert got[("embedworker_queue_stats_up", frozenset())] == 1


def test_queue_depth_nothing_due_and_unavailable(metrics: Metrics) -> None:
    metrics.set_queue_depth(make_status(oldest_due_age_s=None, due=0))
    assert value(metrics, "embedworker_queue_oldest_due_age_seconds") == 0

    metrics.queue_depth_unavailable()

    assert value(metrics, "embedworker_queue_stats_up") == 0
    assert value(metrics, "embedworker_queue_items", status="queued") == 9


def test_registries_are_separate() -> None:
    first, second = Metrics(["e5_small"]), Metrics(["e5_small"])
    first.wakeup("notify")

    assert value(first, "embedworker_wakeups_total", reason="notify") == 1
    assert value(second, "embedworker_wakeups_total", reason="notify") == 0
    assert REGISTRY.get_sample_value("embedworker_wakeups_total", {"reason": "notify"}) is None


def test_parked_items_and_model_coverage(metrics: Metrics) -> None:
    from embedworker.db.coverage import ModelCoverage

    metrics.set_queue_depth(make_status(
        waiting_for_model=4, waiting_by_model={"bge_m3": 4},
        models={"e5_small": ModelCoverage("2", current=7, outdated=3, missing=1)},
    ))

    assert value(metrics, "embedworker_queue_queued_items", state="waiting_for_model") == 4
    assert value(metrics, "embedworker_queue_waiting_items", model="bge_m3") == 4
    assert value(metrics, "embedworker_model_vectors", model="e5_small", state="current") == 7
    assert value(metrics, "embedworker_model_vectors", model="e5_small", state="outdated") == 3
    assert value(metrics, "embedworker_model_vectors", model="e5_small", state="missing") == 1
    assert value(metrics, "embedworker_model_version_info", model="e5_small", version="2") == 1

    # Nothing waits any more, and the version changed: the old series do not linger.
    metrics.set_queue_depth(make_status(
        models={"e5_small": ModelCoverage("3", current=0, outdated=11, missing=0)},
    ))
    assert value(metrics, "embedworker_queue_waiting_items", model="bge_m3") == 0
    assert value(metrics, "embedworker_model_version_info", model="e5_small", version="2") == 0
    assert value(metrics, "embedworker_model_version_info", model="e5_small", version="3") == 1
