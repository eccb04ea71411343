"""The interface every protocol implements, and response checks they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from embedworker.embedders.errors import ErrorKind, ModelError

# One vector as the worker carries it to pgvector: float32, pgvector's own storage type.
Embedding = npt.NDArray[np.float32]
# The vectors of one request, one row per input.
Embeddings = npt.NDArray[np.float32]

# pgvector stores float32; a larger finite double would become infinity there.
FLOAT32_MAX = 3.4028234663852886e38


class Embedder(Protocol):
    """Embeds a list of texts with one model; raises ModelError on any failure."""

    name: str
    dimension: int
    max_batch: int

    async def embed(self, texts: Sequence[str]) -> Embeddings: ...

    async def healthy(self) -> bool: ...

    async def answers(self) -> bool:
        """Whether an embedding request succeeds now (a stricter probe than ``healthy``)."""
        ...

    async def aclose(self) -> None: ...


def check_vectors(vectors: Any, count: int, dimension: int) -> Embeddings:
    """``vectors`` as a (count, dimension) float32 array if it is ``count`` finite vectors of
    ``dimension`` numbers (JSON lists, or float32 arrays from a binary answer), else raise."""
    if not isinstance(vectors, list):
        raise _malformed("no list of vectors")
    if len(vectors) != count:
        raise _malformed(f"{len(vectors)} vectors for {count} inputs")
    if count == 0:
        return np.empty((0, dimension), dtype=np.float32)
    if not all(isinstance(vector, _ROW_TYPES) for vector in vectors):
        raise _malformed(_shape_problem(vectors, dimension))
    try:
        # One conversion in C for the whole answer; numpy infers the type, so strings and
        # None show up as a non-numeric dtype instead of being converted.
        array = np.array(vectors)
    except ValueError:  # rows of different lengths, or a row that nests further
        raise _malformed(_shape_problem(vectors, dimension)) from None
    if array.ndim != 2 or array.shape[1] != dimension:
        raise _malformed(_shape_problem(vectors, dimension))
    if array.dtype.kind not in "fi" or _holds_booleans(vectors, array):
        raise _malformed("a vector holds a non-number")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _malformed("NaN or infinite value")
    if np.abs(array).max() > FLOAT32_MAX:
        raise _malformed("a value exceeds float32")
    return array.astype(np.float32, copy=False)


def _holds_booleans(vectors: list[Any], array: npt.NDArray[Any]) -> bool:
    """JSON true/false become 1 and 0 in ``array``; only rows holding those values are
    looked at one number at a time."""
    if all(isinstance(row, np.ndarray) for row in vectors):  # binary rows: no JSON booleans
        return False
    suspects = ((array == 0) | (array == 1)).any(axis=1)
    return any(
        isinstance(vectors[row], list) and any(type(value) is bool for value in vectors[row])
        for row in np.flatnonzero(suspects)
    )


def _shape_problem(vectors: list[Any], dimension: int) -> str:
    for vector in vectors:
        if not isinstance(vector, _ROW_TYPES):
            return f"dimension {type(vector).__name__}, expected {dimension}"
        if len(vector) != dimension:
            return f"dimension {len(vector)}, expected {dimension}"
    return "a vector holds a non-number"  # right lengths: something inside nests further


_ROW_TYPES = (list, np.ndarray)


def _malformed(problem: str) -> ModelError:
    return ModelError(ErrorKind.MALFORMED, f"malformed response: {problem}")
