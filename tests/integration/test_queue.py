"""The queue's SQL on a real database: claim order, SKIP LOCKED, finishing, leases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from embedworker.db.connect import create_pool
from embedworker.db.queue import ModelColumns, QueueStore
from embedworker.domain import Outcome
from tests.helpers import insert_items

MODELS = [
    ModelColumns("e5_small", "embedding_e5_small", "has_e5_embedding", 384),
    ModelColumns("bge_m3", "embedding_bge_m3", "has_bge_embedding", 1024),
]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[QueueStore]:
    pool = await create_pool(database_url, max_size=4)
    yield QueueStore(pool, MODELS, default_max_retries=3)
    await pool.close()


async def test_claim_takes_most_urgent_first(db: asyncpg.Connection, store: QueueStore) -> None:
    await insert_items(db, ["low a", "low b"], priority=9, first_id=1)
    await insert_items(db, ["urgent"], priority=1, first_id=10)
    await insert_items(db, ["normal"], priority=5, first_id=20)

    batch = await store.claim(3, uuid.uuid4(), 30)

    assert [item.content_text for item in batch.items] == ["urgent", "normal", "low a"]
    rows = await db.fetch("SELECT content_text, status, lease_token FROM embedding_queue")
    claimed = {r["content_text"] for r in rows if r["status"] == "processing"}
    assert claimed == {"urgent", "normal", "low a"}
    assert all(r["lease_token"] == batch.token for r in rows if r["status"] == "processing")


async def test_claim_skips_rows_not_due(db: asyncpg.Connection, store: QueueStore) -> None:
    await insert_items(db, ["due", "later", "spent", "done"])
    await db.execute("UPDATE embedding_queue SET scheduled_at = now() + interval '1 hour'"
                     " WHERE content_text = 'later'")
    await db.execute("UPDATE embedding_queue SET retry_count = 3 WHERE content_text = 'spent'")
    await db.execute("UPDATE embedding_queue SET status = 'completed'"
                     " WHERE content_text = 'done'")

    batch = await store.claim(10, uuid.uuid4(), 30)

    assert [item.content_text for item in batch.items] == ["due"]


async def test_concurrent_claims_never_share_a_row(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await insert_items(db, [f"text {n}" for n in range(200)])

    batches = await asyncio.gather(*(store.claim(25, uuid.uuid4(), 30) for _ in range(10)))

    ids = [item.id for batch in batches for item in batch.items]
    assert len(ids) == 200
    assert len(set(ids)) == 200


async def test_finish_ignores_a_batch_that_lost_its_lease(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await insert_items(db, ["original"])
    batch = await store.claim(1, uuid.uuid4(), 30)
    # The text changes while the batch holds the row: the trigger revokes the lease.
    await db.execute("UPDATE embedding_queue SET content_text = 'changed',"
                     " content_hash = md5('changed')")

    counts = await store.finish(
        batch.token, [Outcome(batch.items[0], "original", {"e5_small": [0.1] * 384})], [0.0]
    )

    assert counts.lost == 1
    row = await db.fetchrow("SELECT status, content_text FROM embedding_queue")
    assert (row["status"], row["content_text"]) == ("queued", "changed")
    assert await db.fetchval("SELECT count(*) FROM embeddings") == 0


async def test_expired_leases_are_recovered_then_failed(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await insert_items(db, ["crashes the worker"])
    for attempt in range(1, 4):
        batch = await store.claim(1, uuid.uuid4(), 30)
        assert len(batch.items) == 1, attempt
        await db.execute("UPDATE embedding_queue SET lease_expires_at = now() - interval '1 s'")
        requeued, failed = await store.recover_expired(30, max_reclaims=3)
        assert (requeued, failed) == ((1, 0) if attempt < 3 else (0, 1))

    row = await db.fetchrow("SELECT status, retry_count, reclaim_count, error_message"
                            " FROM embedding_queue")
    assert row["status"] == "failed"
    assert row["retry_count"] == 0
    assert row["reclaim_count"] == 3
    assert "lease expired 3 times" in row["error_message"]


async def test_rows_stuck_before_embedworker_are_recovered(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await insert_items(db, ["stuck in the old system"])
    await db.execute("UPDATE embedding_queue SET status = 'processing',"
                     " processing_started_at = now() - interval '2 days'")

    requeued, failed = await store.recover_expired(30, max_reclaims=5)

    assert (requeued, failed) == (1, 0)
    assert await db.fetchval("SELECT status FROM embedding_queue") == "queued"


async def test_release_returns_rows_without_spending_a_retry(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await insert_items(db, ["a", "b"])
    batch = await store.claim(2, uuid.uuid4(), 30)

    assert await store.release([batch.token]) == 2

    rows = await db.fetch("SELECT status, retry_count, lease_token FROM embedding_queue")
    assert {(r["status"], r["retry_count"], r["lease_token"]) for r in rows} == {
        ("queued", 0, None)
    }


async def test_renew_extends_only_the_own_lease(db: asyncpg.Connection, store: QueueStore) -> None:
    await insert_items(db, ["a", "b"])
    mine = await store.claim(1, uuid.uuid4(), 1)
    theirs = await store.claim(1, uuid.uuid4(), 1)

    assert await store.renew(mine.token, 600) == 1

    leases = {
        r["lease_token"]: r["remaining"]
        for r in await db.fetch("SELECT lease_token, extract(epoch FROM lease_expires_at - now())"
                                " AS remaining FROM embedding_queue")
    }
    assert leases[mine.token] > 500
    assert leases[theirs.token] < 2


async def test_validate_finds_nothing_wrong_with_a_migrated_database(store: QueueStore) -> None:
    assert await store.validate() == []
    assert await store.validate() == []  # the check leaves no prepared statement behind


async def test_validate_reports_what_the_claim_and_finish_would_fail_on(
    db: asyncpg.Connection, store: QueueStore
) -> None:
    await db.execute("ALTER TABLE embeddings DROP COLUMN embedding_versions")

    problems = await store.validate()

    assert len(problems) == 2  # the claim and the finish both read it
    assert all("embedding_versions" in problem for problem in problems)
