"""embedders.deferred: the model client is built by its first use, once."""

from __future__ import annotations

import asyncio

import pytest

from embedworker.config import ModelSettings
from embedworker.embedders import Embedder, build_embedder
from embedworker.embedders import deferred as module
from embedworker.embedders.deferred import DeferredEmbedder

SETTINGS = ModelSettings(url="http://127.0.0.1:9", dimension=384, column="embedding_e5_small",
                         flag_column="has_e5_embedding", batch_size=16)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Embedder]:
    built: list[Embedder] = []

    def counting(name: str, settings: ModelSettings) -> Embedder:
        built.append(build_embedder(name, settings))
        return built[-1]

    monkeypatch.setattr(module, "build_embedder", counting)
    return built


def test_nothing_is_built_until_the_client_is_needed(builds: list[Embedder]) -> None:
    deferred = DeferredEmbedder("e5_small", SETTINGS)
    assert (deferred.name, deferred.dimension) == ("e5_small", 384)
    assert builds == []
    asyncio.run(deferred.aclose())  # nothing to close
    assert builds == []


def test_the_client_is_built_once_and_answers_for_the_model(builds: list[Embedder]) -> None:
    deferred = DeferredEmbedder("e5_small", SETTINGS)
    assert deferred.max_batch == 16
    assert deferred.client() is deferred.client() is builds[0]
    deferred.max_batch = 8
    assert builds[0].max_batch == 8
    asyncio.run(deferred.aclose())
    assert len(builds) == 1
