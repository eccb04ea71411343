"""The error classes every protocol maps its failures onto.

    ModelError
      kind=TRANSIENT   connection refused or reset, timeout, 429, 5xx: try again later
      kind=TOO_BIG     413, or a 422 about batch size: split the batch
      kind=PER_ITEM    400/422 because of an input: bisect to find it, charge only it
      kind=MALFORMED   wrong count or dimension, NaN or infinity, not JSON: never written
      kind=REFUSED     401/403: the server refuses our credentials; a configuration problem,
                       so the model counts as unavailable and no item is charged
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    TOO_BIG = "too_big"
    PER_ITEM = "per_item"
    MALFORMED = "malformed"
    REFUSED = "refused"


class ModelError(Exception):
    """A request to a model server failed; ``reason`` is short and fit for error_message."""

    def __init__(
        self,
        kind: ErrorKind,
        reason: str,
        *,
        retry_after_s: float | None = None,
        unreachable: bool = False,
    ):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after_s = retry_after_s
        # the server could not be reached at all (refused, reset, timed out)
        self.unreachable = unreachable

    def __repr__(self) -> str:
        return f"ModelError({self.kind.value}, {self.reason!r})"
