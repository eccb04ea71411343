"""The worker end to end, in process: claim, embed with both models, write, finish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from embedworker.config import Settings
from embedworker.service import Service
from embedworker.standin import StandinServer
from tests.helpers import close_to, expected_bge, expected_e5, insert_items, statuses


async def drain(settings: Settings) -> int:
    return await Service(settings, drain=True).run()


async def test_drain_writes_both_vectors(
    db: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    texts = [f"lesson {n}: photosynthesis turns light into sugar" for n in range(70)]
    await insert_items(db, texts)

    assert await drain(make_settings()) == 0

    assert await statuses(db) == {"completed": 70}
    rows = await db.fetch(
        "SELECT content_id, content_text, content_hash, embedding_e5_small, embedding_bge_m3,"
        " has_e5_embedding, has_bge_embedding, status FROM embeddings ORDER BY content_id"
    )
    assert len(rows) == 70
    for row, text in zip(rows, texts, strict=True):
        assert row["content_text"] == text
        assert row["status"] == "completed"
        assert row["has_e5_embedding"] and row["has_bge_embedding"]
        assert close_to(row["embedding_e5_small"], expected_e5(text))
        assert close_to(row["embedding_bge_m3"], expected_bge(text))
