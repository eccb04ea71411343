"""Unit tests of the response checks (embedders.base) and the HTTP status mapping (embedders.http).

Responses are built as httpx.Response objects directly, or served by an httpx.MockTransport;
nothing listens on a socket.
"""

from __future__ import annotations

import math
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from embedworker.embedders import ErrorKind, ModelError
from embedworker.embedders.base import check_vectors
from embedworker.embedders.decode import decode_json
from embedworker.embedders.http import (
    REQUEST_ATTEMPTS,
    ServerClient,
    error_for_status,
    parse_retry_after,
    with_retries,
)


def malformed(vectors: Any, count: int, dimension: int) -> ModelError:
    """The ModelError check_vectors raises; fails the test unless its kind is MALFORMED."""
    with pytest.raises(ModelError) as caught:
        check_vectors(vectors, count, dimension)
    assert caught.value.kind is ErrorKind.MALFORMED
    assert caught.value.retry_after_s is None
    return caught.value


# --- check_vectors ----------------------------------------------------------------------


def test_good_vectors_are_returned_as_float32_rows() -> None:
    vectors = [[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]]
    checked = check_vectors(vectors, 2, 3)
    assert checked.dtype == np.float32
    assert checked.shape == (2, 3)
    assert checked.tolist() == [[np.float32(v) for v in row] for row in vectors]


def test_integer_components_are_numbers() -> None:
    assert check_vectors([[0, 1, -2]], 1, 3).tolist() == [[0.0, 1.0, -2.0]]


def test_float32_arrays_of_a_binary_answer_are_vectors() -> None:
    rows = [np.array([0.5, 0.0, 1.0], dtype="<f4"), np.array([-1.0, 0.25, 0.0], dtype="<f4")]
    assert check_vectors(rows, 2, 3).tolist() == [[0.5, 0.0, 1.0], [-1.0, 0.25, 0.0]]


def test_no_vectors_for_no_inputs() -> None:
    assert check_vectors([], 0, 384).shape == (0, 384)


@pytest.mark.parametrize("vectors", [None, {"embeddings": [[0.0]]}, "[[0.0]]", ([0.0],), 3])
def test_not_a_list_is_malformed(vectors: Any) -> None:
    error = malformed(vectors, 1, 1)
    assert "no list of vectors" in error.reason


def test_too_few_vectors_is_malformed() -> None:
    error = malformed([[0.0, 0.0]], 2, 2)
    assert "1 vectors for 2 inputs" in error.reason


def test_too_many_vectors_is_malformed() -> None:
    error = malformed([[0.0], [0.0], [0.0]], 2, 1)
    assert "3 vectors for 2 inputs" in error.reason


def test_wrong_dimension_is_malformed() -> None:
    error = malformed([[0.0] * 384, [0.0] * 383], 2, 384)
    assert "dimension 383, expected 384" in error.reason


def test_empty_vector_is_malformed() -> None:
    assert "dimension 0" in malformed([[]], 1, 3).reason


@pytest.mark.parametrize("vector", [None, "0.1,0.2", {"0": 0.1}, 0.5, (0.1, 0.2)])
def test_a_vector_that_is_not_a_list_is_malformed(vector: Any) -> None:
    error = malformed([vector], 1, 2)
    assert "expected 2" in error.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_infinity_is_malformed(bad: float) -> None:
    error = malformed([[0.0, 0.0], [0.0, bad]], 2, 2)
    assert "NaN or infinite" in error.reason


@pytest.mark.parametrize("bad", ["0.5", None, [0.5], {"v": 0.5}])
def test_non_number_component_is_malformed(bad: Any) -> None:
    error = malformed([[0.5, bad]], 1, 2)
    assert "non-number" in error.reason


def test_huge_integer_component_is_malformed() -> None:
    malformed([[10**400, 0.0]], 1, 2)


def test_boolean_component_is_malformed() -> None:
    malformed([[True, False]], 1, 2)


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_among_numbers_is_malformed(flag: bool) -> None:
    error = malformed([[0.25, 1.0, 0.0], [0.5, flag, -0.5]], 2, 3)
    assert "non-number" in error.reason


def test_ragged_rows_are_malformed() -> None:
    error = malformed([[0.5, 0.5], [0.5]], 2, 2)
    assert "dimension 1, expected 2" in error.reason


def test_a_vector_nested_deeper_is_malformed() -> None:
    error = malformed([[[0.5], [0.5]]], 1, 2)
    assert "non-number" in error.reason


# --- error_for_status -------------------------------------------------------------------


def test_413_is_too_big() -> None:
    error = error_for_status(httpx.Response(413, json={"detail": "batch too large: 80 > 64"}))
    assert error.kind is ErrorKind.TOO_BIG
    assert error.reason == "HTTP 413: batch too large: 80 > 64"


def test_413_without_a_body_is_too_big() -> None:
    error = error_for_status(httpx.Response(413))
    assert error.kind is ErrorKind.TOO_BIG
    assert error.reason == "HTTP 413"


@pytest.mark.parametrize(
    "detail",
    [
        "batch size 80 exceeds the limit of 64",
        "Batch too large",
        "too many inputs",
        "max_client_batch_size is 32",
    ],
)
def test_422_about_batch_size_is_too_big(detail: str) -> None:
    error = error_for_status(httpx.Response(422, json={"detail": detail}))
    assert error.kind is ErrorKind.TOO_BIG
    assert detail in error.reason


@pytest.mark.parametrize("status", [400, 422])
def test_other_400_and_422_are_per_item(status: int) -> None:
    detail = "input rejected: contains forbidden content"
    error = error_for_status(httpx.Response(status, json={"detail": detail}))
    assert error.kind is ErrorKind.PER_ITEM
    assert error.reason == f"HTTP {status}: {detail}"
    assert error.retry_after_s is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": "input 3 is empty"}, "input 3 is empty"),
        ({"message": "input 3 is empty"}, "input 3 is empty"),
        ({"msg": "input 3 is empty"}, "input 3 is empty"),
        ({"error": {"message": "input 3 is empty", "code": 7}}, "input 3 is empty"),
    ],
)
def test_per_item_reason_carries_the_servers_detail(body: dict[str, Any], detail: str) -> None:
    error = error_for_status(httpx.Response(422, json=body))
    assert error.kind is ErrorKind.PER_ITEM
    assert error.reason == f"HTTP 422: {detail}"


def test_plain_text_detail_is_used() -> None:
    error = error_for_status(httpx.Response(400, text="  bad input at index 2\n"))
    assert error.kind is ErrorKind.PER_ITEM
    assert error.reason == "HTTP 400: bad input at index 2"


def test_long_detail_is_cut() -> None:
    error = error_for_status(httpx.Response(400, json={"detail": "x" * 5000}))
    assert error.kind is ErrorKind.PER_ITEM
    assert len(error.reason) <= len("HTTP 400: ") + 200


def test_429_with_retry_after_seconds_is_transient() -> None:
    response = httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "slow down"})
    error = error_for_status(response)
    assert error.kind is ErrorKind.TRANSIENT
    assert error.retry_after_s == 7.0
    assert error.reason == "HTTP 429: slow down"


def test_429_without_retry_after_is_transient() -> None:
    error = error_for_status(httpx.Response(429))
    assert error.kind is ErrorKind.TRANSIENT
    assert error.retry_after_s is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(status: int) -> None:
    error = error_for_status(httpx.Response(status, json={"detail": "model loading"}))
    assert error.kind is ErrorKind.TRANSIENT
    assert error.reason == f"HTTP {status}: model loading"
    assert error.retry_after_s is None


def test_503_with_retry_after_date_is_transient() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    response = httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    error = error_for_status(response)
    assert error.kind is ErrorKind.TRANSIENT
    assert error.retry_after_s is not None
    assert 80.0 <= error.retry_after_s <= 90.0


# --- parse_retry_after ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"), [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (" 12 ", 12.0), ("-3", 0.0)]
)
def test_retry_after_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "Someday, 99 Foo 20 25:61:00"])
def test_retry_after_absent_or_unparseable_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_http_date_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None
    # The date has whole seconds only, and a little time passes while the test runs.
    assert 110.0 <= seconds <= 120.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_retry_after_http_date_without_zone_does_not_raise() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00") == 0.0


def test_retry_after_nan_is_none() -> None:
    assert parse_retry_after("nan") is None


# --- ServerClient.post with retries over a mock transport ---


def mock_client(handler: Any) -> ServerClient:
    return ServerClient("http://model.test", 5.0, None, transport=httpx.MockTransport(handler))


async def post_once(client: ServerClient, path: str, payload: dict[str, Any]) -> Any:
    return decode_json(await client.post(path, orjson.dumps(payload)))


async def test_post_returns_the_decoded_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"embeddings": [[1.0, 2.0]]})

    async with aclosing(mock_client(handler)) as client:
        body = await with_retries(lambda: post_once(client, "/embed/batch", {"inputs": ["a"]}))

    assert body == {"embeddings": [[1.0, 2.0]]}
    assert len(seen) == 1
    assert seen[0].url.path == "/embed/batch"


async def test_post_does_not_retry_a_per_item_rejection() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"detail": "input 0 is empty"})

    async with aclosing(mock_client(handler)) as client:
        with pytest.raises(ModelError) as caught:
            await with_retries(lambda: post_once(client, "/embed/batch", {"inputs": [""]}))

    assert caught.value.kind is ErrorKind.PER_ITEM
    assert calls == 1


async def test_post_body_that_is_not_json_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>oops</html>")

    async with aclosing(mock_client(handler)) as client:
        with pytest.raises(ModelError) as caught:
            await with_retries(lambda: post_once(client, "/embed/batch", {"inputs": ["a"]}))

    assert caught.value.kind is ErrorKind.MALFORMED


async def test_post_retries_a_transient_error_then_gives_it_back() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        # Retry-After: 0 keeps tenacity's wait at zero seconds.
        return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})

    async with aclosing(mock_client(handler)) as client:
        with pytest.raises(ModelError) as caught:
            await with_retries(lambda: post_once(client, "/embed/batch", {"inputs": ["a"]}))

    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.reason == "HTTP 503: busy"
    assert calls == REQUEST_ATTEMPTS


async def test_post_succeeds_after_a_transient_error() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json={"embeddings": []}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async with aclosing(mock_client(handler)) as client:
        body = await with_retries(lambda: post_once(client, "/embed/batch", {"inputs": []}))

    assert body == {"embeddings": []}
    assert answers == []


def test_value_beyond_float32_is_malformed() -> None:
    with pytest.raises(ModelError) as caught:
        check_vectors([[1e39, 0.0]], 1, 2)
    assert caught.value.kind is ErrorKind.MALFORMED
    assert "float32" in caught.value.reason
