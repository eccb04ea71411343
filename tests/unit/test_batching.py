"""Unit tests of embedworker.batching.embed_isolating with an in-test fake embedder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from embedworker.batching import Result, embed_isolating
from embedworker.embedders import Embedder, ErrorKind, ModelError

Rule = Callable[[list[str]], ModelError | None]


def vector_for(text: str) -> list[float]:
    """The fake model's vector: distinct for every test text ("text 007" -> [7.0, 0.5])."""
    return [float(text.split()[-1]), 0.5]


def texts(n: int) -> list[str]:
    return [f"text {i:03d}" for i in range(n)]


def never(batch: list[str]) -> ModelError | None:
    return None


class FakeEmbedder:
    """Records every batch it is asked for; ``rule`` decides which batches fail and how.

    ``yields`` gives, per text, how many times to hand control to the event loop before
    answering a batch that starts with that text: it reorders completions without sleeping.
    """

    dimension = 2

    def __init__(
        self, rule: Rule = never, *, max_batch: int = 64, yields: dict[str, int] | None = None
    ) -> None:
        self.name = "fake"
        self.max_batch = max_batch
        self.rule = rule
        self.yields = yields or {}
        self.calls: list[list[str]] = []
        self.completed: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        batch = list(texts)
        self.calls.append(batch)
        for _ in range(self.yields.get(batch[0], 0) if batch else 0):
            await asyncio.sleep(0)
        error = self.rule(batch)
        if error is not None:
            raise error
        self.completed.append(batch)
        return [vector_for(text) for text in batch]

    async def answers(self) -> bool:
        return True

    async def healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    @property
    def embedded(self) -> list[str]:
        """Every text that got a vector, in the order the answers came."""
        return [text for batch in self.completed for text in batch]


def as_embedder(fake: FakeEmbedder) -> Embedder:
    """The fake satisfies the Embedder protocol (checked by mypy at this assignment)."""
    embedder: Embedder = fake
    return embedder


def errors_in(results: Sequence[Result]) -> dict[int, ModelError]:
    return {i: r for i, r in enumerate(results) if isinstance(r, ModelError)}


def assert_all_vectors(inputs: Sequence[str], results: Sequence[Result]) -> None:
    assert len(results) == len(inputs)
    assert list(results) == [vector_for(text) for text in inputs]


# --- chunking ---------------------------------------------------------------------------


async def test_no_texts_no_calls() -> None:
    fake = FakeEmbedder()
    assert await embed_isolating(as_embedder(fake), []) == []
    assert fake.calls == []


async def test_one_call_when_everything_fits() -> None:
    inputs = texts(20)
    fake = FakeEmbedder(max_batch=64)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert fake.calls == [inputs]
    assert_all_vectors(inputs, results)


@pytest.mark.parametrize(("count", "max_batch"), [(100, 7), (64, 64), (65, 64), (5, 1), (3, 10)])
async def test_chunks_never_exceed_max_batch(count: int, max_batch: int) -> None:
    inputs = texts(count)
    fake = FakeEmbedder(max_batch=max_batch)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert all(1 <= len(batch) <= max_batch for batch in fake.calls)
    assert len(fake.calls) == -(-count // max_batch)  # ceil: no needless extra requests
    assert sorted(fake.embedded) == inputs  # every text sent exactly once
    assert_all_vectors(inputs, results)


async def test_chunks_are_consecutive_slices() -> None:
    inputs = texts(10)
    fake = FakeEmbedder(max_batch=4)

    await embed_isolating(as_embedder(fake), inputs)

    assert sorted(fake.calls) == [inputs[0:4], inputs[4:8], inputs[8:10]]


async def test_zero_max_batch_means_one_text_per_call() -> None:
    inputs = texts(3)
    fake = FakeEmbedder(max_batch=0)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert sorted(fake.calls) == [[text] for text in inputs]
    assert_all_vectors(inputs, results)


# --- TOO_BIG ----------------------------------------------------------------------------


def too_big_over(limit: int) -> Rule:
    def rule(batch: list[str]) -> ModelError | None:
        if len(batch) > limit:
            return ModelError(ErrorKind.TOO_BIG, f"HTTP 413: batch too large: {len(batch)}")
        return None

    return rule


@pytest.mark.parametrize(("count", "limit"), [(20, 5), (64, 10), (33, 1), (7, 6)])
async def test_too_big_splits_until_batches_fit(count: int, limit: int) -> None:
    inputs = texts(count)
    fake = FakeEmbedder(too_big_over(limit), max_batch=64)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert_all_vectors(inputs, results)
    assert all(len(batch) <= limit for batch in fake.completed)
    assert sorted(fake.embedded) == inputs
    # Only batches over the limit were refused, and halving stopped once batches fitted.
    refused = [batch for batch in fake.calls if batch not in fake.completed]
    assert all(len(batch) > limit for batch in refused)
    assert all(len(batch) >= (limit + 1) // 2 for batch in fake.completed)


async def test_too_big_for_a_single_text_gives_that_text_the_error() -> None:
    inputs = texts(6)
    huge = inputs[4]

    def rule(batch: list[str]) -> ModelError | None:
        if huge in batch:
            return ModelError(ErrorKind.TOO_BIG, "HTTP 413: input too long")
        return None

    fake = FakeEmbedder(rule)
    results = await embed_isolating(as_embedder(fake), inputs)

    errors = errors_in(results)
    assert list(errors) == [4]
    assert errors[4].kind is ErrorKind.TOO_BIG
    assert [huge] in fake.calls
    assert sorted(fake.embedded) == [t for t in inputs if t != huge]


# --- PER_ITEM ---------------------------------------------------------------------------


def rejecting(*poison: str, kind: ErrorKind = ErrorKind.PER_ITEM) -> Rule:
    def rule(batch: list[str]) -> ModelError | None:
        if any(text in poison for text in batch):
            return ModelError(kind, "HTTP 422: input rejected: contains forbidden content")
        return None

    return rule


@pytest.mark.parametrize("position", [0, 7, 13, 19])
async def test_one_poison_text_among_twenty_carries_the_error_alone(position: int) -> None:
    inputs = texts(20)
    poison = inputs[position]
    fake = FakeEmbedder(rejecting(poison), max_batch=64)

    results = await embed_isolating(as_embedder(fake), inputs)

    errors = errors_in(results)
    assert list(errors) == [position]
    assert errors[position].kind is ErrorKind.PER_ITEM
    assert "forbidden content" in errors[position].reason
    for i, text in enumerate(inputs):
        if i != position:
            assert results[i] == vector_for(text)
    assert [poison] in fake.calls  # bisected down to the poison alone
    assert poison not in fake.embedded
    # Bisection: one failed request per level, never a search text by text.
    assert len(fake.calls) <= 1 + 2 * 5


async def test_two_poison_texts_in_different_chunks() -> None:
    inputs = texts(20)
    fake = FakeEmbedder(rejecting(inputs[2], inputs[17]), max_batch=8)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert list(errors_in(results)) == [2, 17]
    assert all(len(batch) <= 8 for batch in fake.calls)
    assert sorted(fake.embedded) == [t for i, t in enumerate(inputs) if i not in (2, 17)]


async def test_every_text_rejected() -> None:
    inputs = texts(5)
    fake = FakeEmbedder(rejecting(*inputs))

    results = await embed_isolating(as_embedder(fake), inputs)

    assert list(errors_in(results)) == [0, 1, 2, 3, 4]
    assert all(isinstance(r, ModelError) and r.kind is ErrorKind.PER_ITEM for r in results)


# --- TRANSIENT --------------------------------------------------------------------------


async def test_transient_error_is_not_bisected() -> None:
    inputs = texts(20)

    def rule(batch: list[str]) -> ModelError | None:
        return ModelError(ErrorKind.TRANSIENT, "HTTP 503: model loading", retry_after_s=7.0)

    fake = FakeEmbedder(rule, max_batch=8)
    results = await embed_isolating(as_embedder(fake), inputs)

    # One call per chunk (8 + 8 + 4), no halving.
    assert sorted(len(batch) for batch in fake.calls) == [4, 8, 8]
    assert len(results) == 20
    for result in results:
        assert isinstance(result, ModelError)
        assert result.kind is ErrorKind.TRANSIENT
        assert result.reason == "HTTP 503: model loading"
        assert result.retry_after_s == 7.0


async def test_transient_error_in_one_chunk_leaves_the_others() -> None:
    inputs = texts(12)

    def rule(batch: list[str]) -> ModelError | None:
        if inputs[5] in batch:
            return ModelError(ErrorKind.TRANSIENT, "timeout calling /embed/batch")
        return None

    fake = FakeEmbedder(rule, max_batch=4)
    results = await embed_isolating(as_embedder(fake), inputs)

    assert len(fake.calls) == 3
    assert list(errors_in(results)) == [4, 5, 6, 7]  # the whole chunk, nothing split
    for i in (0, 1, 2, 3, 8, 9, 10, 11):
        assert results[i] == vector_for(inputs[i])


# --- MALFORMED --------------------------------------------------------------------------


async def test_malformed_answer_is_bisected_to_the_text_that_causes_it() -> None:
    inputs = texts(20)
    fake = FakeEmbedder(rejecting(inputs[11], kind=ErrorKind.MALFORMED))

    results = await embed_isolating(as_embedder(fake), inputs)

    errors = errors_in(results)
    assert list(errors) == [11]
    assert errors[11].kind is ErrorKind.MALFORMED
    assert [inputs[11]] in fake.calls
    assert sorted(fake.embedded) == [t for i, t in enumerate(inputs) if i != 11]


async def test_malformed_for_any_batch_of_several_ends_with_single_requests() -> None:
    inputs = texts(9)

    def rule(batch: list[str]) -> ModelError | None:
        if len(batch) > 1:
            return ModelError(ErrorKind.MALFORMED, "malformed response: 1 vectors for 2 inputs")
        return None

    fake = FakeEmbedder(rule)
    results = await embed_isolating(as_embedder(fake), inputs)

    assert_all_vectors(inputs, results)
    assert all(len(batch) == 1 for batch in fake.completed)


# --- order ------------------------------------------------------------------------------


async def test_results_follow_input_order_when_answers_arrive_out_of_order() -> None:
    inputs = texts(12)
    # The first chunk answers last, the last chunk first.
    yields = {inputs[0]: 30, inputs[3]: 20, inputs[6]: 10, inputs[9]: 0}
    fake = FakeEmbedder(max_batch=3, yields=yields)

    results = await embed_isolating(as_embedder(fake), inputs)

    assert [batch[0] for batch in fake.completed] == [inputs[9], inputs[6], inputs[3], inputs[0]]
    assert_all_vectors(inputs, results)


async def test_order_is_kept_with_mixed_outcomes() -> None:
    inputs = texts(30)
    poison = {inputs[3], inputs[22]}

    def rule(batch: list[str]) -> ModelError | None:
        if len(batch) > 4:
            return ModelError(ErrorKind.TOO_BIG, "HTTP 413")
        if poison & set(batch):
            return ModelError(ErrorKind.PER_ITEM, "HTTP 422: rejected")
        return None

    yields = {text: 30 - i for i, text in enumerate(inputs)}
    fake = FakeEmbedder(rule, max_batch=10, yields=yields)
    results = await embed_isolating(as_embedder(fake), inputs)

    for i, text in enumerate(inputs):
        if text in poison:
            result = results[i]
            assert isinstance(result, ModelError)
            assert result.kind is ErrorKind.PER_ITEM
        else:
            assert results[i] == vector_for(text)
    assert not any(isinstance(r, ModelError) and r.reason == "not attempted" for r in results)
