"""Prometheus metrics of one daemon, in a registry of their own."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from embedworker.db.stats import STATUSES, QueueStatus
from embedworker.embedders.errors import ErrorKind
from embedworker.ops.throughput import Throughput

# prometheus-client keeps every process's values in files here when it is set (processes > 1).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
ERROR_KINDS: tuple[str, ...] = tuple(kind.value for kind in ErrorKind)
WAKEUP_REASONS: tuple[str, ...] = ("notify", "poll", "timer")
LEASE_OUTCOMES: tuple[str, ...] = ("requeued", "failed")
QUEUED_STATES: tuple[str, ...] = ("due", "scheduled_later", "stranded", "waiting_for_model")
VECTOR_STATES: tuple[str, ...] = ("current", "outdated", "missing")

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Every metric the daemon exports; the worker, the embedders and the HTTP server feed it.

    ``models`` pre-creates the per-model series (at zero), so rates exist before any error.
    ``throughput`` keeps the last hour's completed and failed items per minute for the status
    page (Prometheus has the counters; the page needs no Prometheus).
    """

    def __init__(self, models: Iterable[str] = (), *, clock: Callable[[], float] = time.time):
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self.throughput = Throughput()
        self._statuses_seen: set[str] = set(STATUSES)
        models = list(models)
        self._models_seen: set[str] = set(models)
        self._versions: dict[str, str] = {}
        r = self.registry
        self.items_completed = Counter(
            "embedworker_items_completed", "Items that ended 'completed'.", registry=r
        )
        self.items_failed = Counter(
            "embedworker_items_failed", "Items that ended 'failed'.", registry=r
        )
        self.items_retried = Counter(
            "embedworker_items_retried", "Items put back to 'queued' to be tried again.",
            registry=r,
        )
        self.batch_size = Histogram(
            "embedworker_batch_size", "Items per claimed batch.",
            buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        self.batch_duration = Histogram(
            "embedworker_batch_duration_seconds", "Time from claim to the final write of a batch.",
            buckets=SECONDS_BUCKETS, registry=r,
        )
        self.last_batch = Gauge(
            "embedworker_last_batch_timestamp_seconds",
            "Unix time of the last batch that completed at least one item.",
            multiprocess_mode="livemax", registry=r,
        )
        self.model_seconds = Histogram(
            "embedworker_model_request_seconds", "Duration of one request to a model server.",
            ["model"], buckets=SECONDS_BUCKETS, registry=r,
        )
        self.model_errors = Counter(
            "embedworker_model_errors", "Failed model requests, by error class.",
            ["model", "kind"], registry=r,
        )
        self.model_up = Gauge(
            "embedworker_model_up", "1 while the model server is available (breaker closed).",
            ["model"], multiprocess_mode="livemin", registry=r,
        )
        self.lease_reclaims = Counter(
            "embedworker_lease_reclaims", "Rows taken back after their lease expired.",
            ["outcome"], registry=r,
        )
        self.wakeups = Counter(
            "embedworker_wakeups", "Why idle workers woke up.", ["reason"], registry=r
        )
        self.queue_items = Gauge(
            "embedworker_queue_items", "Rows of embedding_queue by status.", ["status"],
            multiprocess_mode="livemostrecent", registry=r,
        )
        self.queue_queued_items = Gauge(
            "embedworker_queue_queued_items",
            "Queued rows: due now, scheduled later, or stranded (never claimable).",
            ["state"], multiprocess_mode="livemostrecent", registry=r,
        )
        self.queue_oldest_due_age = Gauge(
            "embedworker_queue_oldest_due_age_seconds",
            "How long the longest-waiting due item has been due (0 when none is).",
            multiprocess_mode="livemostrecent", registry=r,
        )
        self.model_vectors = Gauge(
            "embedworker_model_vectors",
            "Live embeddings rows with the model's vector of its current version, of another"
            " version, or none.",
            ["model", "state"], multiprocess_mode="livemostrecent", registry=r,
        )
        self.model_version = Gauge(
            "embedworker_model_version_info",
            "1 for the version each model's new vectors are recorded as; 0 for earlier ones.",
            ["model", "version"], multiprocess_mode="livemostrecent", registry=r,
        )
        self.queue_waiting = Gauge(
            "embedworker_queue_waiting_items",
            "Queued rows parked until the model they wait for answers again.", ["model"],
            multiprocess_mode="livemostrecent", registry=r,
        )
        self.queue_stats_up = Gauge(
            "embedworker_queue_stats_up",
            "1 if the last refresh of the queue gauges succeeded, 0 if it failed.",
            multiprocess_mode="livemostrecent", registry=r,
        )
        for reason in WAKEUP_REASONS:
            self.wakeups.labels(reason=reason)
        for outcome in LEASE_OUTCOMES:
            self.lease_reclaims.labels(outcome=outcome)
        for model in models:
            self.model_up.labels(model=model).set(1)
            self.model_seconds.labels(model=model)
            for kind in ERROR_KINDS:
                self.model_errors.labels(model=model, kind=kind)

    def batch_finished(
        self, size: int, completed: int, retrying: int, failed: int, seconds: float
    ) -> None:
        """One batch was written: how many items it had and what became of them."""
        self.items_completed.inc(completed)
        self.items_retried.inc(retrying)
        self.items_failed.inc(failed)
        self.throughput.record(completed, failed)
        self.batch_size.observe(size)
        self.batch_duration.observe(seconds)
        if completed > 0:
            self.last_batch.set(self._clock())

    def model_request(self, model: str, seconds: float, error_kind: str | None) -> None:
        """One HTTP request to a model server; ``error_kind`` is an ErrorKind value or None."""
        self.model_seconds.labels(model=model).observe(seconds)
        if error_kind is not None:
            kind = str(error_kind)
            if kind not in ERROR_KINDS:
                raise ValueError(f"unknown error kind {kind!r}; expected one of {ERROR_KINDS}")
            self.model_errors.labels(model=model, kind=kind).inc()

    def model_available(self, model: str, up: bool) -> None:
        """The model's circuit breaker closed (``up``) or opened."""
        self.model_up.labels(model=model).set(1 if up else 0)

    def lease_recovered(self, requeued: int, failed: int) -> None:
        """Lease recovery took rows back: re-queued, or failed after too many reclaims."""
        self.lease_reclaims.labels(outcome="requeued").inc(requeued)
        self.lease_reclaims.labels(outcome="failed").inc(failed)

    def wakeup(self, reason: str) -> None:
        """An idle worker woke up; ``reason`` is what Waker.wait returned."""
        if reason not in WAKEUP_REASONS:
            raise ValueError(f"unknown wake-up reason {reason!r}; expected one of {WAKEUP_REASONS}")
        self.wakeups.labels(reason=reason).inc()

    def set_queue_depth(self, status: QueueStatus) -> None:
        """Refresh the queue gauges from a fresh QueueStatus."""
        self._statuses_seen.update(status.by_status)
        for name in self._statuses_seen:
            self.queue_items.labels(status=name).set(status.by_status.get(name, 0))
        self.queue_queued_items.labels(state="due").set(status.due)
        self.queue_queued_items.labels(state="scheduled_later").set(status.scheduled_later)
        self.queue_queued_items.labels(state="stranded").set(status.stranded)
        self.queue_queued_items.labels(state="waiting_for_model").set(status.waiting_for_model)
        for model in set(status.waiting_by_model) | self._models_seen:
            self.queue_waiting.labels(model=model).set(status.waiting_by_model.get(model, 0))
        self._models_seen.update(status.waiting_by_model)
        for model, coverage in status.models.items():
            previous = self._versions.get(model)
            if previous is not None and previous != coverage.version:
                # 0, not removed: prometheus-client cannot remove a series in multiprocess mode
                self.model_version.labels(model=model, version=previous).set(0)
            self._versions[model] = coverage.version
            self.model_version.labels(model=model, version=coverage.version).set(1)
            self.model_vectors.labels(model=model, state="current").set(coverage.current)
            self.model_vectors.labels(model=model, state="outdated").set(coverage.outdated)
            self.model_vectors.labels(model=model, state="missing").set(coverage.missing)
        self.queue_oldest_due_age.set(status.oldest_due_age_s or 0.0)
        self.queue_stats_up.set(1)

    def queue_depth_unavailable(self) -> None:
        """The queue could not be read; the queue gauges keep their last values."""
        self.queue_stats_up.set(0)

    def render(self) -> tuple[bytes, str]:
        """The exposition: (body, content type). Under ``processes`` > 1 it is every worker
        process's metrics together: counters and histograms summed, gauges as their
        multiprocess_mode says (a model is up only where every process finds it up)."""
        return generate_latest(collected_registry(self.registry)), CONTENT_TYPE_LATEST


def collected_registry(own: CollectorRegistry) -> CollectorRegistry:
    """``own``, or, where the processes of one service share PROMETHEUS_MULTIPROC_DIR, a
    registry that reads all of their values."""
    if not os.environ.get(MULTIPROCESS_ENV):
        return own
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
