"""Search benchmark ("make bench-search", or `python bench/run.py --only search`; not part of
the test suite).

    python bench/search.py                   # 100k rows, 384 dimensions: about 6 minutes
    python bench/search.py --sets topical,bag,random --ef-search 40,100,200,400  # the README's
    python bench/search.py --rows 20000      # a quick run
    python bench/search.py --ef-search 40,100,200 --m 16 --ef-construction 64 --sets topical

For each set of vectors it fills `embeddings.embedding_e5_small` of a fresh database (binary
COPY), measures embedworker_search() (through `search_model`, the call the search command
makes, k = 10) without an index, builds the HNSW index the way the daemon does
(embedworker.indexing.ensure_index; m and ef_construction from --m and --ef-construction,
by default the settings' defaults) and measures again at each hnsw.ef_search:

  topical  vectors made the way text embeddings behave: a row's text is 8 to 40 words, mostly
           of one subject (400 subjects of 50 words, plus common words), and its vector is the
           normalised sum of its words' fixed random vectors; rows about the same subject, and
           sharing words, are near each other. A query is 2 to 6 words of some row plus one
           word of anything.
  bag      the same, but words come from one Zipf-distributed vocabulary of 20,000 words with
           no subjects: neighbours share a few words at most. Much harder.
  random   independent random unit vectors (what the stand-in gives): no structure at all,
           the hardest case for any ANN index.

Reported: the build time; per setting, latency p50/p99 (client round trip of the call) and
recall@10 against the exact top 10 computed with numpy; and the same with a content-type filter
that keeps 9 % ("lesson") and 1 % ("rare") of the rows, with how many calls returned fewer than
10 rows ("short"). Results go to bench/results/search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import Postgres, git_revision, pctl

from embedworker.config import Settings
from embedworker.db.connect import connect
from embedworker.db.registry import register_models
from embedworker.db.search import search_model
from embedworker.indexing import IndexOptions, ensure_index
from embedworker.service import model_columns

Vectors = npt.NDArray[np.float32]
K = 10
VOCABULARY = 20_000
TYPES = (("post", 0.60), ("course", 0.30), ("lesson", 0.09), ("rare", 0.01))
RESULTS = Path(__file__).resolve().parent / "results" / "search.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def normalise(vectors: Vectors) -> Vectors:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _sum_of_words(words: Vectors, docs: list[npt.NDArray[np.int64]]) -> Vectors:
    out = np.empty((len(docs), words.shape[1]), dtype=np.float32)
    for start in range(0, len(docs), 5000):
        part = docs[start : start + 5000]
        lengths = np.array([len(doc) for doc in part])
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out[start : start + len(part)] = np.add.reduceat(
            words[np.concatenate(part)], offsets, axis=0)
    return normalise(out)


def _queries(words: Vectors, docs: list[npt.NDArray[np.int64]], count: int,
             rng: np.random.Generator) -> Vectors:
    """2 to 6 words of some row, and one word of anything."""
    picked = []
    for _ in range(count):
        doc = docs[rng.integers(len(docs))]
        size = min(len(doc), int(rng.integers(2, 7)))
        picked.append(np.append(rng.choice(doc, size=size, replace=False),
                                rng.integers(len(words))))
    return _sum_of_words(words, picked)


def zipf(size: int, exponent: float) -> npt.NDArray[np.float64]:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return weights / weights.sum()


def topical(rows: int, queries: int, dim: int, seed: int) -> tuple[Vectors, Vectors]:
    """Texts about subjects: 400 topics of 50 words each and 200 common words; a text draws
    8 to 40 words, 70 % from its topic, 15 % from a second one, 15 % common words (Zipf within
    each group, and over topics)."""
    rng = np.random.default_rng(seed)
    topics, per_topic, common = 400, 50, 200
    words = normalise(rng.standard_normal((topics * per_topic + common, dim)).astype(np.float32))
    topic_of = rng.choice(topics, size=(rows, 2), p=zipf(topics, 0.8))
    in_topic, in_common = zipf(per_topic, 1.0), zipf(common, 1.0)
    docs = []
    for n in range(rows):
        length = int(rng.integers(8, 41))
        source = rng.choice(3, size=length, p=[0.70, 0.15, 0.15])
        chosen = np.empty(length, dtype=np.int64)
        for group, topic in enumerate(topic_of[n]):
            mask = source == group
            chosen[mask] = topic * per_topic + rng.choice(per_topic, mask.sum(), p=in_topic)
        mask = source == 2
        chosen[mask] = topics * per_topic + rng.choice(common, mask.sum(), p=in_common)
        docs.append(chosen)
    return _sum_of_words(words, docs), _queries(words, docs, queries, rng)


def bag(rows: int, queries: int, dim: int, seed: int) -> tuple[Vectors, Vectors]:
    """Texts of words drawn from one Zipf-distributed vocabulary of 20,000 words, with no
    subjects: near neighbours share a few rare words at best, which makes it far harder."""
    rng = np.random.default_rng(seed)
    words = normalise(rng.standard_normal((VOCABULARY, dim)).astype(np.float32))
    lengths = rng.integers(8, 41, rows)
    drawn = rng.choice(VOCABULARY, size=int(lengths.sum()), p=zipf(VOCABULARY, 1.07))
    docs = np.split(drawn, np.cumsum(lengths)[:-1])
    return _sum_of_words(words, docs), _queries(words, docs, queries, rng)


def random_set(rows: int, queries: int, dim: int, seed: int) -> tuple[Vectors, Vectors]:
    rng = np.random.default_rng(seed)
    return (normalise(rng.standard_normal((rows, dim)).astype(np.float32)),
            normalise(rng.standard_normal((queries, dim)).astype(np.float32)))


def content_types(rows: int, seed: int) -> npt.NDArray[np.str_]:
    rng = np.random.default_rng(seed)
    names = [name for name, _ in TYPES]
    return rng.choice(names, size=rows, p=[share for _, share in TYPES])


async def load(url: str, vectors: Vectors, types: npt.NDArray[np.str_]) -> None:
    conn = await connect(url, vectors=True)
    try:
        records = ((str(types[n]), n + 1, f"row {n + 1}", f"h{n + 1}", vectors[n], True)
                   for n in range(len(vectors)))
        await conn.copy_records_to_table(
            "embeddings", records=records,
            columns=["content_type", "content_id", "content_text", "content_hash",
                     "embedding_e5_small", "has_e5_embedding"],
        )
        await conn.execute("VACUUM ANALYZE embeddings")
    finally:
        await conn.close()


def exact_top(vectors: Vectors, queries: Vectors, allowed: npt.NDArray[np.bool_] | None,
              k: int = K) -> list[set[int]]:
    """Each query's exact top k (content ids), among the ``allowed`` rows."""
    scores = queries @ vectors.T
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [{int(i) + 1 for i in row} for row in top]


async def measure(url: str, settings: Settings, queries: Vectors, truth: list[set[int]],
                  types: list[str] | None) -> dict[str, Any]:
    conn = await connect(url, vectors=True)
    try:
        await search_model(conn, "e5_small", queries[0], K, types)  # warm the cache
        latencies, recalls, short = [], [], 0
        for query, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            hits = await search_model(conn, "e5_small", query, K, types)
            latencies.append((time.perf_counter() - started) * 1000)
            found = {hit.content_id for hit in hits}
            recalls.append(len(found & expected) / K)
            short += len(hits) < K
    finally:
        await conn.close()
    return {"p50_ms": round(pctl(latencies, 50), 2), "p99_ms": round(pctl(latencies, 99), 2),
            "recall_at_10": round(float(np.mean(recalls)), 4), "short_answers": short,
            "queries": len(queries)}


async def set_ef_search(url: str, settings: Settings, ef: int) -> Settings:
    updated = settings.model_copy(update={"search_ef_search": ef})
    conn = await connect(url)
    try:
        await register_models(conn, updated)
    finally:
        await conn.close()
    return updated


async def one_set(pg: Postgres, name: str, vectors: Vectors, queries: Vectors,
                  args: argparse.Namespace) -> dict[str, Any]:
    types = content_types(len(vectors), seed=3)
    filters: dict[str, list[str] | None] = {"none": None, "lesson (9 %)": ["lesson"],
                                            "rare (1 %)": ["rare"]}
    truths = {label: exact_top(vectors, queries, None if kinds is None
                               else np.isin(types, kinds))
              for label, kinds in filters.items()}
    result: dict[str, Any] = {"rows": len(vectors), "dimension": vectors.shape[1]}
    async with pg.database(f"search_{name}") as url:
        log(f"{name}: loading {len(vectors)} rows")
        await load(url, vectors, types)
        settings = Settings(database_url=url, models={"bge_m3": {"enabled": False}},
                            index_m=args.m, index_ef_construction=args.ef_construction)
        settings = await set_ef_search(url, settings, args.ef_search[0])
        exact_queries = min(len(queries), args.exact_queries)
        log(f"{name}: {exact_queries} searches without an index")
        result["no_index"] = {
            label: await measure(url, settings, queries[:exact_queries],
                                 truths[label][:exact_queries], kinds)
            for label, kinds in filters.items()
        }
        log(f"{name}: building the HNSW index as the daemon does")
        e5 = next(model for model in model_columns(settings) if model.name == "e5_small")
        outcome = await ensure_index(url, e5, IndexOptions.from_settings(settings), min_rows=0)
        assert outcome.status == "built", outcome
        result["build_s"] = round(outcome.seconds or 0.0, 1)
        result["index"] = {}
        for ef in args.ef_search:
            settings = await set_ef_search(url, settings, ef)
            log(f"{name}: {len(queries)} searches with the index, ef_search {ef}")
            result["index"][ef] = {
                label: await measure(url, settings, queries, truths[label], kinds)
                for label, kinds in filters.items()
            }
    return result


def table(results: dict[str, Any]) -> str:
    lines = [f"{'set':<11} {'index':<14} {'filter':<13} {'p50 ms':>8} {'p99 ms':>8}"
             f" {'recall@10':>9} {'short':>5}"]
    for name, result in results["sets"].items():
        runs = [("none", result["no_index"])]
        runs += [(f"hnsw ef {ef}", by) for ef, by in result["index"].items()]
        for label, by_filter in runs:
            for filter_label, m in by_filter.items():
                lines.append(f"{name:<11} {label:<14} {filter_label:<13} {m['p50_ms']:>8.2f}"
                             f" {m['p99_ms']:>8.2f} {m['recall_at_10']:>9.3f}"
                             f" {m['short_answers']:>5}")
        lines.append(f"{name:<11} build of the HNSW index: {result['build_s']} s"
                     f" ({result['rows']} rows, {result['dimension']} dimensions)")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    log("starting the embedded PostgreSQL")
    pg = Postgres()
    results: dict[str, Any] = {"revision": git_revision(), "options": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "sets": {}}
    try:
        await pg.setup()
        conn = await connect(pg.url)
        try:
            results["pgvector"] = await conn.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        finally:
            await conn.close()
        makers = {"topical": topical, "bag": bag, "random": random_set}
        for name in args.sets:
            log(f"{name}: generating {args.rows} vectors and {args.queries} queries")
            vectors, queries = makers[name](args.rows, args.queries, args.dim, seed=1)
            results["sets"][name] = await one_set(pg, name, vectors, queries, args)
    finally:
        pg.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="searches per setting")
    parser.add_argument("--exact-queries", type=int, default=30,
                        help="searches without the index (each scans the table)")
    parser.add_argument("--dim", type=int, default=384)
    defaults = Settings.model_fields
    parser.add_argument("--m", type=int, default=defaults["index_m"].default,
                        help="index_m of the build (default: the setting's default)")
    parser.add_argument("--ef-construction", type=int,
                        default=defaults["index_ef_construction"].default,
                        help="index_ef_construction of the build (default: the setting's)")
    parser.add_argument("--ef-search", type=lambda t: [int(x) for x in t.split(",")],
                        default=[40, 100, 200], help="the first is used without an index too")
    parser.add_argument("--sets", type=lambda t: t.split(","),
                        default=["topical", "random"], help="of topical, bag, random")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
