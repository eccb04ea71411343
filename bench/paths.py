"""Where the worker's time goes, piece by piece, without the worker process.

- ``decode_costs``: CPU per item of what the worker does with a model's answer (the JSON decode
  of post_once, check_vectors, pgvector's binary encoding), as the daemon does it now and with
  orjson and numpy (bench/requirements.txt) instead.
- ``database_drain``: the database side of a drain alone: ``concurrency`` coroutines that claim
  with the daemon's own QueueStore.claim and finish with (a) the daemon's QueueStore.finish
  (UPDATE + executemany of one upsert per item) or (b) a prototype that finishes a batch in
  one statement (the same UPDATE and upsert, fed from unnest() of arrays, vector[] included).
  Models and JSON cost nothing here, so this is the most a drain could do with that SQL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import zlib
from typing import Any

import asyncpg
from harness import MODELS, Postgres, enqueue, median

from embedworker.standin import deterministic_vector

POOL = 256


def _pool(model: str) -> list[list[float]]:
    return [deterministic_vector(model, f"pool {i}", MODELS[model]) for i in range(POOL)]


def _slot(text: str) -> int:
    return zlib.crc32(text.encode()) % POOL


# -- decoding --------------------------------------------------------------------------------


def decode_costs(batch: int = 32, rounds: int = 30) -> dict[str, Any]:
    """Microseconds of CPU per item for each step of handling an answer, per model.

    "daemon" is what embedworker does now: its decoder (stdlib json, or orjson since 83d7381),
    its check_vectors, and pgvector's encoding of a list; "proposed" is orjson, a numpy check
    (one float32 array per answer) and the binary encoding of float32 rows (a byte copy).
    """
    from pgvector import Vector

    import embedworker.embedders.http as daemon_http
    from embedworker.embedders.base import check_vectors

    try:
        import orjson
    except ImportError:
        orjson = None
    try:
        import numpy as np
    except ImportError:
        np = None
    daemon_decoder = "orjson" if hasattr(daemon_http, "orjson") else "json"

    def timed(function: Any) -> float:
        function()
        started = time.process_time()
        for _ in range(rounds):
            function()
        return (time.process_time() - started) / rounds / batch * 1e6

    out: dict[str, Any] = {"batch": batch, "daemon_decoder": daemon_decoder, "models": {}}
    for model, dim in MODELS.items():
        pool = _pool(model)
        body = json.dumps({"embeddings": [pool[i] for i in range(batch)], "count": batch,
                           "dim": dim}).encode()
        vectors = json.loads(body)["embeddings"]
        row: dict[str, Any] = {"answer_bytes_per_item": len(body) // batch}
        row["json_loads_us"] = timed(lambda b=body: json.loads(b))
        if orjson is not None:
            row["orjson_loads_us"] = timed(lambda b=body: orjson.loads(b))
        row["check_vectors_us"] = timed(lambda v=vectors, d=dim: check_vectors(v, batch, d))
        row["vector_encode_us"] = timed(lambda v=vectors: [Vector(x).to_binary() for x in v])
        decode = row["orjson_loads_us"] if daemon_decoder == "orjson" else row["json_loads_us"]
        row["daemon_total_us"] = decode + row["check_vectors_us"] + row["vector_encode_us"]
        if np is not None:
            def numpy_check(v: list[list[float]] = vectors, d: int = dim) -> Any:
                array = np.asarray(v, dtype=np.float32)
                if array.shape != (batch, d) or not np.isfinite(array).all():
                    raise ValueError("bad vectors")
                return array
            row["numpy_check_us"] = timed(numpy_check)
            array = numpy_check()
            row["numpy_encode_us"] = timed(
                lambda a=array: [Vector(x).to_binary() for x in a])
            if orjson is not None:
                row["proposed_total_us"] = (row["orjson_loads_us"] + row["numpy_check_us"]
                                            + row["numpy_encode_us"])
        out["models"][model] = {k: round(v, 1) if isinstance(v, float) else v
                                for k, v in row.items()}
    totals = {key: round(sum(m.get(key, 0.0) for m in out["models"].values()), 1)
              for key in ("daemon_total_us", "proposed_total_us")}
    out.update(totals)
    return out


# -- the database side of a drain ------------------------------------------------------------


def _batched_finish_sql() -> str:
    """The daemon's finish (queue UPDATE, then the embeddings upsert) as ONE statement whose
    upsert reads its rows from unnest() of arrays: one round trip and one plan per batch."""
    from embedworker.db.queue import _FINISH_SQL

    finish = _FINISH_SQL.strip()
    upsert = _upsert_from_unnest()
    return f"""
WITH finished AS (
{finish}
), upserted AS (
{upsert}
    RETURNING 1
)
SELECT id, status FROM finished
"""


def _upsert_from_unnest() -> str:
    """The daemon's upsert (embedworker.db.queue._upsert_embeddings_sql, two models) fed from
    unnest($9..$13 arrays) joined to the rows the finish still owned."""
    same = "e.content_hash = EXCLUDED.content_hash"
    updates, flags = [], []
    for column, flag in (("embedding_e5_small", "has_e5_embedding"),
                         ("embedding_bge_m3", "has_bge_embedding")):
        updates.append(f"{column} = CASE WHEN EXCLUDED.{flag} THEN EXCLUDED.{column} "
                       f"WHEN {same} THEN e.{column} END")
        after = (f"(EXCLUDED.{flag} OR ({same} AND coalesce(e.{flag}, false) "
                 f"AND e.{column} IS NOT NULL))")
        updates.append(f"{flag} = {after}")
        flags.append(after)
    return f"""
    INSERT INTO embeddings AS e
        (content_type, content_id, content_hash, content_text, embedding_e5_small,
         has_e5_embedding, embedding_bge_m3, has_bge_embedding, status, updated_at)
    SELECT u.content_type, u.content_id, u.content_hash, u.content_text,
           u.v_e5, u.v_e5 IS NOT NULL, u.v_bge, u.v_bge IS NOT NULL,
           CASE WHEN u.v_e5 IS NOT NULL AND u.v_bge IS NOT NULL
                THEN 'completed' ELSE 'pending' END, now()
    FROM unnest($9::bigint[], $10::text[], $11::bigint[], $12::text[], $13::text[],
                $14::vector[], $15::vector[])
         AS u(id, content_type, content_id, content_hash, content_text, v_e5, v_bge)
    JOIN finished f ON f.id = u.id
    WHERE u.v_e5 IS NOT NULL OR u.v_bge IS NOT NULL
    ON CONFLICT (content_type, content_id) DO UPDATE SET
        {", ".join(updates)},
        status = CASE WHEN {" AND ".join(flags)} THEN 'completed' ELSE 'pending' END,
        content_hash = EXCLUDED.content_hash,
        content_text = EXCLUDED.content_text,
        updated_at = now()"""


async def database_drain(pg: Postgres, items: int, concurrency: int = 4, batch: int = 32,
                         mode: str = "current") -> dict[str, Any]:
    """Claim and finish ``items`` rows with no model and no JSON: items/s of the SQL alone."""
    from pgvector import Vector

    from embedworker.config import Settings
    from embedworker.db.connect import create_pool
    from embedworker.db.queue import QueueStore
    from embedworker.domain import Outcome
    from embedworker.service import model_columns

    pools = {model: _pool(model) for model in MODELS}
    settings = Settings(database_url="postgresql://unused/x",
                        models={m: {"url": "http://127.0.0.1:1"} for m in MODELS})
    batched_sql = _batched_finish_sql()
    async with pg.database(f"db_{mode}") as url:
        await enqueue(url, items)
        await pg.admin("CHECKPOINT")
        pool = await create_pool(url, max_size=concurrency + 2)
        store = QueueStore(pool, model_columns(settings), default_max_retries=3)
        claims: list[float] = []
        finishes: list[float] = []

        async def loop() -> int:
            done = 0
            while True:
                token = uuid.uuid4()
                t0 = time.perf_counter()
                claimed = await store.claim(batch, token, 30.0)
                t1 = time.perf_counter()
                claims.append(t1 - t0)
                if not claimed.items:
                    return done
                if mode == "current":
                    outcomes = []
                    for item in claimed.items:
                        slot = _slot(item.content_text)
                        outcome = Outcome(item, item.content_text)
                        outcome.vectors = {m: pools[m][slot] for m in MODELS}
                        outcomes.append(outcome)
                    t1 = time.perf_counter()
                    await store.finish(token, outcomes, [0.0] * len(outcomes))
                else:
                    its = claimed.items
                    slots = [_slot(i.content_text) for i in its]
                    async with pool.acquire() as conn:
                        await conn.fetch(
                            batched_sql,
                            [i.id for i in its], [True] * len(its), [False] * len(its),
                            [False] * len(its), [None] * len(its), [0.0] * len(its), token, 3,
                            [i.id for i in its], [i.content_type for i in its],
                            [i.content_id for i in its], [i.content_hash for i in its],
                            [i.content_text for i in its],
                            [Vector(pools["e5_small"][s]) for s in slots],
                            [Vector(pools["bge_m3"][s]) for s in slots])
                finishes.append(time.perf_counter() - t1)
                done += len(claimed.items)

        started = time.perf_counter()
        counts = await asyncio.gather(*(loop() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        await pool.close()
        conn = await asyncpg.connect(url)
        complete = await conn.fetchval(
            "SELECT count(*) FROM embeddings WHERE status = 'completed'"
            " AND has_e5_embedding AND has_bge_embedding")
        await conn.close()
    return {"mode": mode, "items": items, "concurrency": concurrency, "batch": batch,
            "done": sum(counts), "embeddings_complete": complete,
            "seconds": round(seconds, 3), "items_per_s": round(sum(counts) / seconds, 1),
            "claim_ms_median": round(1000 * median(claims), 2),
            "finish_ms_median": round(1000 * median(finishes), 2)}

