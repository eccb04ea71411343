"""`embedworker search`: a question embedded *as a query* by each model's server, then the
nearest rows through ``embedworker_search()``.

With one model the hits are that model's. Without, every enabled model with a ``search_weight``
above 0 takes part: each contributes its ``CANDIDATES_PER_K * k`` nearest rows, and the union is
ranked by the weighted sum of every model's cosine similarity (weights normalised to sum to 1;
a row without a current vector of a model gets 0 from it). A model whose server fails is left
out with a warning, and the weights of the others are normalised again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from embedworker.config import ModelSettings, Settings
from embedworker.db.search import RowKey, RowSimilarities, search_model, similarities
from embedworker.db.vectors import ModelColumns
from embedworker.embedders import ModelError, build_embedder
from embedworker.embedders.base import Embedding
from embedworker.text import clean_text

CANDIDATES_PER_K = 3


@dataclass(frozen=True)
class SearchHit:
    """One row of the answer; ``similarities`` holds each model's cosine similarity."""

    content_type: str
    content_id: int
    similarity: float
    text: str
    similarities: Mapping[str, float | None]

    def as_json(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "content_id": self.content_id,
            "similarity": self.similarity,
            "text": self.text,
            "similarities": dict(self.similarities),
        }


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    weights: Mapping[str, float]  # normalised, of the models that took part
    skipped: Mapping[str, str] = field(default_factory=dict)  # model -> why


class SearchError(Exception):
    """No model could embed the question; the message says why."""


def query_settings(model: ModelSettings) -> ModelSettings:
    """The model's settings for embedding a question instead of a passage."""
    return model.model_copy(update={
        "task": model.query_task,
        "prefix": model.query_prefix,
        "model": model.query_model or model.model,
    })


async def embed_query(name: str, model: ModelSettings, text: str) -> Embedding:
    embedder = build_embedder(name, query_settings(model))
    try:
        vectors = await embedder.embed([text])
    finally:
        await embedder.aclose()
    vector: Embedding = vectors[0]
    return vector


def rank(
    rows: Mapping[RowKey, RowSimilarities], weights: Mapping[str, float], k: int
) -> list[SearchHit]:
    """The ``k`` rows of the highest weighted sum of similarities (``weights`` sum to 1)."""
    scored = [
        SearchHit(
            key[0], key[1],
            sum(weight * (row.similarities.get(name) or 0.0) for name, weight in weights.items()),
            row.text, row.similarities,
        )
        for key, row in rows.items()
    ]
    scored.sort(key=lambda hit: (-hit.similarity, hit.content_type, hit.content_id))
    return scored[:k]


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


async def search(
    conn: asyncpg.Connection,
    settings: Settings,
    columns: Sequence[ModelColumns],
    question: str,
    *,
    model: str | None = None,
    content_types: Sequence[str] | None = None,
    k: int = 10,
) -> SearchResult:
    """Search with ``model``, or with every enabled model of positive weight."""
    text = clean_text(question, settings.max_chars)
    enabled = settings.enabled_models
    if model is not None:
        vector = await embed_query(model, enabled[model], text)
        hits = await search_model(conn, model, vector, k, content_types)
        return SearchResult(
            [SearchHit(hit.content_type, hit.content_id, hit.similarity, hit.text,
                       {model: hit.similarity}) for hit in hits],
            {model: 1.0},
        )
    weights = {name: m.search_weight for name, m in enabled.items() if m.search_weight > 0}
    if not weights:
        raise SearchError("every enabled model has search_weight 0: give one a weight")
    answers = await asyncio.gather(
        *(embed_query(name, enabled[name], text) for name in weights), return_exceptions=True
    )
    vectors: dict[str, Embedding] = {}
    skipped: dict[str, str] = {}
    for name, answer in zip(weights, answers, strict=True):
        if isinstance(answer, ModelError):
            skipped[name] = answer.reason
        elif isinstance(answer, BaseException):
            raise answer
        else:
            vectors[name] = answer
    if not vectors:
        raise SearchError("; ".join(f"{name}: {reason}" for name, reason in skipped.items()))
    by_name = {column.name: column for column in columns}
    keys: dict[RowKey, None] = {}
    for name, vector in vectors.items():
        for hit in await search_model(conn, name, vector, CANDIDATES_PER_K * k, content_types):
            keys[hit.key] = None
    rows = await similarities(
        conn, [(by_name[name], vector) for name, vector in vectors.items()], list(keys)
    )
    used = normalised({name: weights[name] for name in vectors})
    return SearchResult(rank(rows, used, k), used, skipped)


SNIPPET_CHARS = 80


def render(result: SearchResult) -> str:
    """The hits as a table, best first: the (weighted) similarity, each model's when several
    took part, content type and id, and the start of the text."""
    models = list(result.weights)
    lines = []
    if len(models) > 1:
        lines.append("weights: " + ", ".join(
            f"{name} {weight:.2f}" for name, weight in result.weights.items()))
    if not result.hits:
        return "\n".join([*lines, "no hits"]) + "\n"
    rows = [["similarity", *(models if len(models) > 1 else []), "type", "id", "text"]]
    for hit in result.hits:
        each = [_similarity(hit.similarities.get(name)) for name in models]
        rows.append([f"{hit.similarity:.4f}", *(each if len(models) > 1 else []),
                     hit.content_type, str(hit.content_id), _snippet(hit.text)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    right = len(rows[0]) - 3  # the similarities are right-aligned
    for row in rows:
        cells = [cell.rjust(width) if column < right else cell.ljust(width)
                 for column, (cell, width) in enumerate(zip(row, widths, strict=False))]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines) + "\n"


def _similarity(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _snippet(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SNIPPET_CHARS else line[: SNIPPET_CHARS - 1] + "…"
