"""The worker's own encoder of pgvector's binary format gives what pgvector itself gives."""

from __future__ import annotations

import numpy as np
import pytest
from pgvector import Vector

from embedworker.db.connect import encode_vector


def test_a_float32_row_encodes_like_pgvector() -> None:
    row = np.array([0.5, -1.25, 3.0e-8, 0.0], dtype=np.float32)
    assert encode_vector(row) == Vector(row.tolist()).to_binary()


def test_a_row_of_an_answer_round_trips() -> None:
    answer = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    decoded = Vector.from_binary(encode_vector(answer[1]))
    assert decoded.to_list() == answer[1].tolist()


def test_a_strided_view_encodes_its_own_values() -> None:
    answer = np.arange(12, dtype=np.float32).reshape(3, 4)
    column = answer[:, 2]
    assert Vector.from_binary(encode_vector(column)).to_list() == [2.0, 6.0, 10.0]


def test_a_list_is_encoded_by_pgvector() -> None:
    assert encode_vector([1.0, 2.0]) == Vector([1.0, 2.0]).to_binary()


def test_a_matrix_is_refused() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        encode_vector(np.zeros((2, 3), dtype=np.float32))
