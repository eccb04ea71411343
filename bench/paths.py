"""Where the worker's time goes, piece by piece, without the worker process.

- ``decode_costs``: CPU per item of what the worker does with a model's answer, as the daemon
  does it: embedworker.embedders.decode.decode_vectors (a JSON answer in one simdjson pass, a
  base64 one through pybase64) and embedworker.db.connect.encode_vector of each float32 row
  (pgvector's binary format, a byte copy); orjson.loads + check_vectors (the general way) and
  the stdlib json.loads beside it for comparison.
- ``database_drain``: the database side of a drain alone: ``concurrency`` coroutines that claim
  with the daemon's own QueueStore.claim and finish with its QueueStore.finish (one statement:
  the queue UPDATE and the embeddings upsert from unnest() of vector[] arrays). Models and JSON
  cost nothing here, so this is the most a drain could do with the daemon's SQL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import zlib
from typing import Any

import asyncpg
import numpy as np
import orjson
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

    ``daemon_total_us`` is what embedworker does with an hfspace JSON answer: decode_vectors
    (one simdjson pass into a checked float32 array) and encode_vector of each row;
    ``base64_total_us`` the same for an OpenAI base64 answer. orjson.loads + check_vectors (the
    general way, taken for answers of another shape) and the stdlib json.loads are there for
    comparison.
    """
    import base64

    from embedworker.config import ModelSettings
    from embedworker.db.connect import encode_vector
    from embedworker.embedders.base import check_vectors
    from embedworker.embedders.decode import decode_vectors
    from embedworker.embedders.hfspace import HfSpaceWire
    from embedworker.embedders.openai import OpenAiWire

    def timed(function: Any) -> float:
        function()
        started = time.process_time()
        for _ in range(rounds):
            function()
        return (time.process_time() - started) / rounds / batch * 1e6

    out: dict[str, Any] = {"batch": batch, "models": {}}
    for model, dim in MODELS.items():
        pool = _pool(model)
        body = json.dumps({"embeddings": [pool[i] for i in range(batch)], "count": batch,
                           "dim": dim}).encode()
        binary = orjson.dumps({"data": [
            {"index": i, "embedding": base64.b64encode(
                np.asarray(pool[i], dtype="<f4").tobytes()).decode()}
            for i in range(batch)]})
        settings = ModelSettings(url="http://127.0.0.1:1", protocol="openai", model=model,
                                 dimension=dim, column="v", flag_column="f")
        hfspace, openai = HfSpaceWire(settings), OpenAiWire(settings)
        vectors = orjson.loads(body)["embeddings"]
        array = decode_vectors(body, hfspace, batch, dim)
        if array.dtype != np.float32 or array.shape != (batch, dim):
            raise RuntimeError(f"decode_vectors gave {array.dtype} {array.shape}")
        row: dict[str, Any] = {"answer_bytes_per_item": len(body) // batch}
        row["json_loads_us"] = timed(lambda b=body: json.loads(b))
        row["orjson_loads_us"] = timed(lambda b=body: orjson.loads(b))
        row["check_vectors_us"] = timed(lambda v=vectors, d=dim: check_vectors(v, batch, d))
        row["decode_vectors_us"] = timed(
            lambda b=body, d=dim, w=hfspace: decode_vectors(b, w, batch, d))
        row["base64_decode_us"] = timed(
            lambda b=binary, d=dim, w=openai: decode_vectors(b, w, batch, d))
        row["encode_vector_us"] = timed(lambda a=array: [encode_vector(x) for x in a])
        row["daemon_total_us"] = row["decode_vectors_us"] + row["encode_vector_us"]
        row["base64_total_us"] = row["base64_decode_us"] + row["encode_vector_us"]
        out["models"][model] = {k: round(v, 1) if isinstance(v, float) else v
                                for k, v in row.items()}
    for total in ("daemon_total_us", "base64_total_us"):
        out[total] = round(sum(m[total] for m in out["models"].values()), 1)
    return out


# -- the database side of a drain ------------------------------------------------------------


async def database_drain(pg: Postgres, items: int, concurrency: int = 8,
                         batch: int = 32) -> dict[str, Any]:
    """Claim and finish ``items`` rows with no model and no JSON: items/s of the daemon's SQL.

    Each outcome carries one float32 row per model, as check_vectors hands them to the finish.
    """
    from embedworker.config import Settings
    from embedworker.db.connect import create_pool
    from embedworker.db.queue import QueueStore
    from embedworker.domain import Outcome
    from embedworker.service import model_columns

    pools = {model: [np.asarray(vector, dtype=np.float32) for vector in _pool(model)]
             for model in MODELS}
    settings = Settings(database_url="postgresql://unused/x",
                        models={m: {"url": "http://127.0.0.1:1"} for m in MODELS})
    async with pg.database("db_drain") as url:
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
                outcomes = []
                for item in claimed.items:
                    slot = _slot(item.content_text)
                    outcome = Outcome(item, item.content_text)
                    outcome.vectors = {m: pools[m][slot] for m in MODELS}
                    outcomes.append(outcome)
                t1 = time.perf_counter()
                await store.finish(token, outcomes, [0.0] * len(outcomes))
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
    return {"items": items, "concurrency": concurrency, "batch": batch,
            "done": sum(counts), "embeddings_complete": complete,
            "seconds": round(seconds, 3), "items_per_s": round(sum(counts) / seconds, 1),
            "claim_ms_median": round(1000 * median(claims), 2),
            "finish_ms_median": round(1000 * median(finishes), 2)}
