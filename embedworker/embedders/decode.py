"""An answer's bytes to a checked (count, dimension) float32 array, in one pass where possible.

The fast path parses with simdjson and copies the rows of numbers into one buffer in C
(``as_buffer``), without a Python float per number. It is taken only for an answer shaped
exactly as expected: the rows where the protocol puts them, ``count`` rows of ``dimension``
numbers, and no ``[`` in the whole answer but the rows' and their list's (so nothing nests
deeper). Anything else, and any failure of the fast path, goes the general way (orjson, the
protocol's own extraction, ``check_vectors``), which names what is wrong.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np
import orjson
import simdjson

from embedworker.embedders.base import FLOAT32_MAX, Embeddings, check_vectors
from embedworker.embedders.errors import ErrorKind, ModelError


class Rows(Protocol):
    """What decoding needs of a protocol's Wire."""

    # The keys that lead from the answer to its list of rows (() when the answer is that
    # list), or None when the protocol has no such list (OpenAI's items).
    rows_at: tuple[str, ...] | None

    def vectors(self, body: Any, count: int) -> Any: ...


def decode_vectors(content: bytes, wire: Rows, count: int, dimension: int) -> Embeddings:
    """The answer's vectors, checked; raise MALFORMED when they are not ``count`` finite
    vectors of ``dimension`` numbers within float32."""
    if wire.rows_at is not None and count and _brackets(content) == count + 1:
        fast = _rows_in_one_pass(content, wire.rows_at, count, dimension)
        if fast is not None:
            return fast
    return check_vectors(wire.vectors(decode_json(content), count), count, dimension)


def _brackets(content: bytes) -> int:
    """How many ``[`` the answer holds (numpy compares many bytes at a time; bytes.count takes
    four times as long on a bge_m3 answer of 32 vectors)."""
    return int(np.count_nonzero(np.frombuffer(content, dtype=np.uint8) == _OPEN_BRACKET))


_OPEN_BRACKET = ord("[")


def decode_json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        # The standard decoder accepts the NaN and Infinity that Python servers emit, so the
        # vector check can name the real problem.
        return json.loads(content)
    except ValueError:
        raise ModelError(ErrorKind.MALFORMED, "malformed response: not JSON") from None


def _rows_in_one_pass(
    content: bytes, path: tuple[str, ...], count: int, dimension: int
) -> Embeddings | None:
    try:
        rows: Any = simdjson.Parser().parse(content)
        for key in path:
            rows = rows[key] if isinstance(rows, simdjson.Object) else None
        if not isinstance(rows, simdjson.Array) or len(rows) != count:
            return None
        if not all(isinstance(row, simdjson.Array) and len(row) == dimension for row in rows):
            return None
        numbers = np.frombuffer(rows.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, KeyError):  # not JSON, a non-number, a missing key
        return None
    if numbers.size != count * dimension or not np.isfinite(numbers).all() \
            or np.abs(numbers).max() > FLOAT32_MAX:
        return None
    return numbers.reshape(count, dimension).astype(np.float32)
