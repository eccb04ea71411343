"""Faults injected into the stand-in's embed requests, and how a malformed answer is damaged."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field

MALFORMS: frozenset[str] = frozenset({"wrong_dim", "nan", "wrong_count", "not_json"})
RANDOM_ERROR_STATUSES: tuple[int, ...] = (500, 503, 429)
POISON_DETAIL = "input rejected: contains forbidden content"
NOT_JSON_BODY = b'{"embeddings": [[0.125, -0.5'


@dataclass
class Faults:
    """Faults injected into embed requests; tests mutate these fields while the server runs.

    `malform` is None or one of MALFORMS: "wrong_dim" (every vector one component short), "nan"
    (first component of the first vector is NaN), "wrong_count" (last vector missing) or
    "not_json" (a truncated body); "count" is the number of vectors sent, "dim" the configured one.
    Random errors (`error_rate`) come from a generator seeded with `seed`, so a run is
    reproducible for a given request order.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    poison_marker: str | None = None
    malform: str | None = None
    healthy: bool = True
    seed: int = 0
    _pending: list[tuple[int, float | None]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "malform" and value is not None and value not in MALFORMS:
            raise ValueError(f"unknown malform {value!r}; known: {sorted(MALFORMS)}")
        super().__setattr__(name, value)

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """Make the next `n` embed requests answer `status` (with Retry-After when given)."""
        with self._lock:
            self._pending.extend([(status, retry_after)] * n)

    def clear(self) -> None:
        """Remove every fault and reseed the random error generator."""
        with self._lock:
            self.latency_s = 0.0
            self.error_rate = 0.0
            self.poison_marker = None
            self.malform = None
            self.healthy = True
            self._pending.clear()
            self._rng = random.Random(self.seed)

    def take_injected(self) -> tuple[int, float | None] | None:
        """Consume the injected failure due for this request: (status, retry_after) or None."""
        with self._lock:
            if self._pending:
                return self._pending.pop(0)
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                return self._rng.choice(RANDOM_ERROR_STATUSES), None
            return None


def malformed(vectors: list[list[float]], malform: str) -> list[list[float]]:
    """Return `vectors` damaged the way `malform` says (not_json is handled by the caller)."""
    if malform == "wrong_dim":
        return [vector[:-1] for vector in vectors]
    if malform == "nan":
        return [[math.nan, *vectors[0][1:]], *vectors[1:]]
    if malform == "wrong_count":
        return vectors[:-1]
    raise ValueError(f"unknown malform: {malform!r}")
