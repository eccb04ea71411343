"""How many embeddings rows have each model's current vector, one of another version, or none.

Rows marked deleted (``is_deleted``) are left out: nothing re-embeds them. One statement reads
the whole table once for every model, so the counts of all models are of one snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from embedworker.db.vectors import ModelColumns, current, stored

LIVE_ROWS = "NOT coalesce(e.is_deleted, false)"


@dataclass(frozen=True)
class ModelCoverage:
    """One model's vectors over the live embeddings rows."""

    version: str
    current: int
    outdated: int
    missing: int

    @property
    def complete(self) -> bool:
        return self.outdated == 0 and self.missing == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "current": self.current,
            "outdated": self.outdated,
            "missing": self.missing,
        }


def reembed_advice(model: str, coverage: ModelCoverage) -> str | None:
    """What to tell an operator about an incomplete coverage; None when it is complete."""
    if coverage.complete:
        return None
    gaps = []
    if coverage.outdated:
        gaps.append(f"{coverage.outdated} of another version")
    if coverage.missing:
        gaps.append(f"{coverage.missing} missing")
    return (
        f"{model} (version {coverage.version}): {coverage.current} current, {', '.join(gaps)};"
        f" run `embedworker reembed {model}` to embed them"
    )


def _coverage_sql(models: Sequence[ModelColumns]) -> str:
    counts = []
    for model in models:
        counts += [
            f"count(*) FILTER (WHERE {current(model)})",
            f"count(*) FILTER (WHERE {stored(model)} AND NOT {current(model)})",
            f"count(*) FILTER (WHERE NOT {stored(model)})",
        ]
    return f"SELECT ARRAY[{', '.join(counts)}]::bigint[] FROM embeddings e WHERE {LIVE_ROWS}"


async def model_coverage(
    conn: asyncpg.Connection | asyncpg.Pool, models: Sequence[ModelColumns]
) -> dict[str, ModelCoverage]:
    """Each model's coverage, keyed by model name."""
    if not models:
        return {}
    counts: list[int] = await conn.fetchval(_coverage_sql(models))
    return {
        model.name: ModelCoverage(model.version, *counts[3 * index : 3 * index + 3])
        for index, model in enumerate(models)
    }
