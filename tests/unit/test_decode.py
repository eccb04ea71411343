"""One-pass decoding of an answer: the same vectors as the general way, and every defect the
general way rejects is rejected (with its reason) whichever way it is found."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from embedworker.embedders.decode import decode_vectors
from embedworker.embedders.errors import ErrorKind, ModelError


class Wire:
    """A protocol whose rows are at ``path``; ``fast`` offers them to the one-pass way."""

    def __init__(self, path: tuple[str, ...], *, fast: bool = True) -> None:
        self.rows_at = path if fast else None
        self._path = path

    def vectors(self, body: Any, count: int) -> Any:
        for key in self._path:
            body = body.get(key) if isinstance(body, dict) else None
        return body


HFSPACE = Wire(("embeddings",))
TEI = Wire(())
GENERAL_ONLY = Wire(("embeddings",), fast=False)


def answer(rows: Any) -> bytes:
    return json.dumps({"embeddings": rows, "count": 2, "dim": 3}).encode()


ROWS = [[0.25, -1.5, 3.0], [1e-3, 2, -0.0]]


@pytest.mark.parametrize("wire", [HFSPACE, GENERAL_ONLY])
def test_same_vectors_either_way(wire: Wire) -> None:
    vectors = decode_vectors(answer(ROWS), wire, 2, 3)
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, 3)
    assert np.array_equal(vectors, np.array(ROWS, dtype=np.float32))


def test_a_top_level_list_of_rows() -> None:
    vectors = decode_vectors(json.dumps(ROWS).encode(), TEI, 2, 3)
    assert np.array_equal(vectors, np.array(ROWS, dtype=np.float32))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (answer([[0.25, [1.5], 3.0], [1, 2, 3]]), "non-number"),  # nested one level deeper
        (answer([[0.25, 1.5], [1, 2, 3]]), "dimension 2"),
        (answer([[0.25, 1.5, 3.0]]), "1 vectors for 2 inputs"),
        (answer([[0.25, True, 3.0], [1, 2, 3]]), "non-number"),
        (answer([[0.25, "1.5", 3.0], [1, 2, 3]]), "non-number"),
        (answer([[0.25, None, 3.0], [1, 2, 3]]), "non-number"),
        (answer([[0.25, 1e300, 3.0], [1, 2, 3]]), "exceeds float32"),
        (b'{"embeddings": [[0.25, NaN, 3.0], [1, 2, 3]]}', "NaN or infinite"),
        (b'{"embeddings": [[0.25, 1.5, 3.0], [1, 2', "not JSON"),
        (b'{"vectors": [[0.25, 1.5, 3.0], [1, 2, 3]]}', "no list"),
    ],
)
def test_defects_are_rejected_with_their_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        decode_vectors(body, HFSPACE, 2, 3)
    assert caught.value.kind is ErrorKind.MALFORMED
    assert reason in caught.value.reason


class FastOnly(Wire):
    def vectors(self, body: Any, count: int) -> Any:
        raise AssertionError("the general way was taken")


@pytest.mark.parametrize(("wire", "body"), [
    (FastOnly(("embeddings",)), answer(ROWS)),
    (FastOnly(()), json.dumps(ROWS).encode()),
])
def test_a_well_formed_answer_takes_the_one_pass_way(wire: Wire, body: bytes) -> None:
    assert np.array_equal(decode_vectors(body, wire, 2, 3), np.array(ROWS, dtype=np.float32))
