"""The interface every protocol implements, and response checks they share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from embedworker.embedders.errors import ErrorKind, ModelError


class Embedder(Protocol):
    """Embeds a list of texts with one model; raises ModelError on any failure."""

    name: str
    dimension: int
    max_batch: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def healthy(self) -> bool: ...

    async def aclose(self) -> None: ...


def check_vectors(vectors: Any, count: int, dimension: int) -> list[list[float]]:
    """Return ``vectors`` if it is ``count`` finite vectors of ``dimension``, else raise."""
    if not isinstance(vectors, list):
        raise ModelError(ErrorKind.MALFORMED, "malformed response: no list of vectors")
    if len(vectors) != count:
        raise ModelError(
            ErrorKind.MALFORMED, f"malformed response: {len(vectors)} vectors for {count} inputs"
        )
    for vector in vectors:
        if not isinstance(vector, list) or len(vector) != dimension:
            got = len(vector) if isinstance(vector, list) else type(vector).__name__
            raise ModelError(
                ErrorKind.MALFORMED, f"malformed response: dimension {got}, expected {dimension}"
            )
        # Both checks loop in C: this runs for every number of every answer.
        if not set(map(type, vector)) <= _NUMBER_TYPES:
            raise ModelError(ErrorKind.MALFORMED, "malformed response: a vector holds a non-number")
        try:
            finite = math.isfinite(math.fsum(vector))  # NaN and infinities survive a sum
        except (OverflowError, ValueError):
            finite = False
        if not finite:
            raise ModelError(ErrorKind.MALFORMED, "malformed response: NaN or infinite value")
        if max(vector) > FLOAT32_MAX or min(vector) < -FLOAT32_MAX:
            raise ModelError(ErrorKind.MALFORMED, "malformed response: a value exceeds float32")
    return vectors


_NUMBER_TYPES = frozenset({float, int})
# pgvector stores float32; a larger finite double would become infinity there.
FLOAT32_MAX = 3.4028234663852886e38
