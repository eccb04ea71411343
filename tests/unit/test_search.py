"""The pure parts of `embedworker search`: ranking by the weighted sum, the query-side
settings, and the table it prints."""

from __future__ import annotations

import pytest

from embedworker.config import Settings
from embedworker.db.search import RowSimilarities
from embedworker.search import (
    SearchHit,
    SearchResult,
    normalised,
    query_settings,
    rank,
    render,
)


def test_rank_is_the_weighted_sum_best_first_and_a_missing_vector_counts_zero() -> None:
    rows = {
        ("post", 1): RowSimilarities("one", {"a": 0.9, "b": 0.1}),
        ("post", 2): RowSimilarities("two", {"a": 0.2, "b": 0.8}),
        ("post", 3): RowSimilarities("three", {"a": 0.95, "b": None}),
    }
    hits = rank(rows, normalised({"a": 1.0, "b": 3.0}), k=2)
    assert [(hit.content_id, round(hit.similarity, 4)) for hit in hits] == [(2, 0.65), (1, 0.3)]
    assert hits[0].similarities == {"a": 0.2, "b": 0.8}
    assert rank(rows, {"a": 1.0}, k=5)[0].content_id == 3


def test_query_settings_swap_in_the_query_side() -> None:
    settings = Settings(database_url="postgresql://x/y", models={
        "e5_small": {"protocol": "openai", "model": "e5-passage", "query_model": "e5-query",
                     "prefix": "passage: ", "query_prefix": "query: "},
    })
    e5 = query_settings(settings.models["e5_small"])
    assert (e5.task, e5.prefix, e5.model) == ("query", "query: ", "e5-query")
    bge = query_settings(settings.models["bge_m3"])
    assert (bge.task, bge.prefix, bge.model) == (None, "", None)
    assert settings.models["e5_small"].search_weight == pytest.approx(0.4)
    assert settings.models["bge_m3"].search_weight == pytest.approx(0.6)


def test_render_one_model_and_several() -> None:
    hit = SearchHit("course", 12, 0.8731, "Plant Biology:\n  from roots " + "x" * 100,
                    {"e5_small": 0.9, "bge_m3": None})
    one = render(SearchResult([hit], {"e5_small": 1.0})).splitlines()
    assert one[0].split() == ["similarity", "type", "id", "text"]
    assert one[1].startswith("    0.8731  course  12  Plant Biology: from roots xxx")
    assert one[1].endswith("…")
    several = render(SearchResult([hit], {"e5_small": 0.4, "bge_m3": 0.6})).splitlines()
    assert several[0] == "weights: e5_small 0.40, bge_m3 0.60"
    assert several[2].split()[:5] == ["0.8731", "0.9000", "-", "course", "12"]
    assert render(SearchResult([], {"e5_small": 1.0})) == "no hits\n"
