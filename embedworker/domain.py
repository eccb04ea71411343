"""Values that cross module lines: a claimed queue item, a batch, and what became of an item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

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
    """

    item: QueueItem
    text: str
    vectors: dict[str, Embedding] = field(default_factory=dict)
    error: str | None = None
    charge: bool = False
    final: bool = False

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def fail(self, reason: str, *, charge: bool = True, final: bool = False) -> None:
        self.error = reason if self.error is None else f"{self.error}; {reason}"
        self.charge = self.charge or charge
        self.final = self.final or final
