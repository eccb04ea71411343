"""Values that cross module lines: a claimed queue item, a batch, and what became of an item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from embedworker.embedders.base import Embedding


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One claimed row of embedding_queue, with the models whose vector is already current."""

    id: int
    content_type: str
    content_id: int
    content_text: str
    content_hash: str
    retry_count: int
    max_retries: int
    models_done: frozenset[str]


@dataclass(frozen=True, slots=True)
class Batch:
    """Items claimed together under one lease token."""

    token: UUID
    items: Sequence[QueueItem]


@dataclass(slots=True)
class Outcome:
    """What to write for one item at the end of its batch.

    ``vectors`` holds the vectors made in this batch (stored even when another model failed).
    With no ``error`` the item is complete. ``charge`` spends one of the item's retries (an
    error that is the item's fault, not an outage's); ``final`` ends it 'failed' at once.
    ``waiting_for`` names the models that were unavailable: an item that failed for no other
    reason is parked until one of them answers again.
    """

    item: QueueItem
    text: str
    vectors: dict[str, Embedding] = field(default_factory=dict)
    error: str | None = None
    charge: bool = False
    final: bool = False
    waiting_for: set[str] = field(default_factory=set)

    @property
    def succeeded(self) -> bool:
        return self.error is None

    @property
    def parked(self) -> bool:
        """It failed only because models were unavailable: it waits for them, spending nothing."""
        return bool(self.waiting_for) and not (self.succeeded or self.charge or self.final)

    def wait_for(self, model: str, reason: str) -> None:
        """``model`` is unavailable: the item waits for it without spending a retry."""
        self.fail(f"{model}: unavailable: {reason}", charge=False)
        self.waiting_for.add(model)

    def fail(self, reason: str, *, charge: bool = True, final: bool = False) -> None:
        self.error = reason if self.error is None else f"{self.error}; {reason}"
        self.charge = self.charge or charge
        self.final = self.final or final
