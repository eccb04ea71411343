"""The query KEDA scales on (deploy/kubernetes/scaledobject.yaml), run as written against a
real migrated database: it counts due plus leased work, agrees with the daemon's own figures,
rises with the backlog and falls to zero once the daemon drained the queue."""

from __future__ import annotations

import math
from collections.abc import Callable

import asyncpg

from embedworker.config import Settings
from embedworker.db.stats import queue_status
from embedworker.service import Service
from tests.deploy.manifests import KUBERNETES, load_yaml_documents
from tests.helpers import insert_items


def scaling_trigger() -> tuple[str, float, int, int]:
    """(query, targetQueryValue, minReplicaCount, maxReplicaCount) of the ScaledObject."""
    (scaled,) = load_yaml_documents(KUBERNETES / "scaledobject.yaml")
    (trigger,) = scaled["spec"]["triggers"]
    spec = scaled["spec"]
    return (trigger["metadata"]["query"], float(trigger["metadata"]["targetQueryValue"]),
            spec["minReplicaCount"], spec["maxReplicaCount"])


def replicas_for(value: float) -> int:
    """What the HPA makes of the query's value (an AverageValue target), within min and max."""
    _, target, low, high = scaling_trigger()
    return min(max(math.ceil(value / target), low), high)


async def backlog(db: asyncpg.Connection) -> int:
    query = scaling_trigger()[0]
    value: int = await db.fetchval(query)
    return value


async def test_the_query_counts_due_and_leased_work_only(db: asyncpg.Connection) -> None:
    assert await backlog(db) == 0

    ids = await insert_items(db, [f"item {n}" for n in range(30)])
    assert await backlog(db) == 30

    # Leased rows are still work; they stay counted.
    await db.execute("UPDATE embedding_queue SET status = 'processing',"
                     " lease_expires_at = now() + interval '30 s' WHERE id = ANY($1)", ids[:5])
    # Not work a new copy could take: a retry scheduled later, an item parked for a model
    # that is down, one whose retries are spent, and finished ones.
    await db.execute("UPDATE embedding_queue SET scheduled_at = now() + interval '1 hour'"
                     " WHERE id = ANY($1)", ids[5:8])
    await db.execute("UPDATE embedding_queue SET waiting_for = ARRAY['bge_m3']"
                     " WHERE id = ANY($1)", ids[8:12])
    await db.execute("UPDATE embedding_queue SET retry_count = 3, max_retries = 3"
                     " WHERE id = ANY($1)", ids[12:14])
    await db.execute("UPDATE embedding_queue SET status = 'failed' WHERE id = ANY($1)",
                     ids[14:16])
    await db.execute("UPDATE embedding_queue SET status = 'completed' WHERE id = ANY($1)",
                     ids[16:18])

    assert await backlog(db) == 30 - 3 - 4 - 2 - 2 - 2
    status = await queue_status(db)
    assert await backlog(db) == status.due + status.by_status["processing"]


async def test_the_backlog_rises_with_inserts_and_falls_to_zero_when_drained(
    db: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    seen = [await backlog(db)]
    for start, size in ((1, 100), (101, 1900), (2001, 600)):
        await insert_items(db, [f"text {n}" for n in range(start, start + size)], first_id=start)
        seen.append(await backlog(db))
    assert seen == [0, 100, 2000, 2600]
    assert [replicas_for(value) for value in seen] == [1, 1, 2, 3]
    assert replicas_for(1_000_000) == scaling_trigger()[3]
    # Work that is not due stays in the queue but not in the backlog.
    await insert_items(db, ["later"], first_id=9000)
    await db.execute("UPDATE embedding_queue SET scheduled_at = now() + interval '1 hour'"
                     " WHERE content_id = 9000")

    exit_code = await Service(make_settings(concurrency=4, batch_size=64), drain=True).run()

    assert exit_code == 0
    assert await backlog(db) == 0
    assert replicas_for(await backlog(db)) == 1
    counts = dict(await db.fetch("SELECT status, count(*) FROM embedding_queue GROUP BY 1"))
    assert counts == {"completed": 2600, "queued": 1}
