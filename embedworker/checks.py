"""`embedworker check`: is everything the daemon needs there and working?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from embedworker.config import Settings
from embedworker.db import migrations
from embedworker.db.connect import UNAVAILABLE_ERRORS, connect, describe
from embedworker.db.coverage import model_coverage, reembed_advice
from embedworker.db.indexes import column_indexes, count_vectors
from embedworker.db.queue import check_model_columns
from embedworker.db.vectors import ModelColumns
from embedworker.embedders import ModelError, build_embedder
from embedworker.service import model_columns

CHECK_TEXT = "embedworker check: is this model answering?"


@dataclass(frozen=True)
class Check:
    """One line of `check`. A warning passes (exit 0) but says what needs doing."""

    name: str
    ok: bool
    detail: str
    warning: bool = False

    def line(self) -> str:
        mark = "FAIL" if not self.ok else "warn" if self.warning else "ok  "
        return f"{mark}  {self.name}: {self.detail}"


async def run_checks(settings: Settings) -> list[Check]:
    """Database, schema, pgvector, each model's columns, health and one test embedding."""
    results = await _database_checks(settings)
    model_results = await asyncio.gather(
        *(_model_checks(name, settings) for name in settings.enabled_models)
    )
    for checks in model_results:
        results.extend(checks)
    return results


async def _database_checks(settings: Settings) -> list[Check]:
    try:
        conn = await connect(settings.database_url)
    except UNAVAILABLE_ERRORS as exc:
        return [Check("database", False, f"unreachable: {describe(exc)}")]
    except asyncpg.PostgresError as exc:
        return [Check("database", False, describe(exc))]
    try:
        version = await conn.fetchval("SHOW server_version")
        results = [Check("database", True, f"reachable (PostgreSQL {version})")]
        vector = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        results.append(Check(
            "pgvector", vector is not None,
            f"version {vector}" if vector else "extension vector is not installed: run migrate",
        ))
        missing = await migrations.pending(conn)
        results.append(Check(
            "migrations", not missing,
            "current" if not missing else f"missing {', '.join(missing)}: run migrate",
        ))
        if not missing:
            channel = await conn.fetchval("SELECT embedworker_channel()")
            results.append(Check(
                "notify channel", channel == settings.channel,
                f"{channel}" if channel == settings.channel
                else f"trigger uses {channel!r}, config says {settings.channel!r}: run migrate",
            ))
        problems = await check_model_columns(conn, model_columns(settings))
        results.append(Check(
            "columns", not problems, "; ".join(problems) or "every model's columns exist"
        ))
        if not missing and not problems:
            results.extend(await _coverage_checks(conn, settings))
            results.extend(await _index_checks(conn, settings))
        return results
    finally:
        await conn.close()


async def _coverage_checks(conn: asyncpg.Connection, settings: Settings) -> list[Check]:
    """A model whose current vectors do not cover every row (a new model, a changed version)
    is a warning that names the command that fixes it."""
    coverage = await model_coverage(conn, model_columns(settings))
    checks = []
    for name, counts in coverage.items():
        advice = reembed_advice(name, counts)
        checks.append(Check(
            f"coverage {name}", True,
            advice or f"every row has a vector of version {counts.version} ({counts.current})",
            warning=advice is not None,
        ))
    return checks


async def _index_checks(conn: asyncpg.Connection, settings: Settings) -> list[Check]:
    """Which model columns an ANN index serves; a missing one is a warning once the column
    holds index_min_rows vectors (searches then scan the whole table)."""
    models = model_columns(settings)
    states = await column_indexes(conn, models)
    checks = []
    for model in models:
        state = states[model.name]
        name = f"index {model.name}"
        serving = state.serving
        if serving is not None and serving.method == "hnsw":
            checks.append(Check(name, True, f"hnsw {serving.name}"))
        elif serving is not None:
            checks.append(Check(name, True, (
                f"{serving.method} {serving.name}: embedworker_search tunes HNSW only, and an"
                " ivfflat index made on an empty table (as Studify's were) finds little;"
                f" DROP INDEX {serving.name} and the daemon builds an HNSW one"
            ), warning=True))
        elif state.building:
            checks.append(Check(name, True, state.describe()))
        elif state.invalid:
            checks.append(Check(name, True, (
                f"invalid index {state.invalid[0].name} (a failed build): the daemon drops and"
                f" rebuilds it at its next check, or run `embedworker index {model.name}`"
            ), warning=True))
        else:
            checks.append(await _unindexed_check(conn, model, settings.index_min_rows))
    return checks


async def _unindexed_check(
    conn: asyncpg.Connection, model: ModelColumns, min_rows: int
) -> Check:
    name = f"index {model.name}"
    if min_rows == 0:
        return Check(name, True, (
            "none (index_min_rows = 0: the daemon builds none;"
            f" `embedworker index {model.name}` does)"
        ), warning=True)
    if await count_vectors(conn, model, min_rows) < min_rows:
        return Check(name, True, f"none yet (fewer than index_min_rows = {min_rows} vectors)")
    return Check(name, True, (
        f"none over {min_rows} or more vectors: searches scan the whole table; the daemon"
        f" builds one at its next check, or run `embedworker index {model.name}`"
    ), warning=True)


async def _model_checks(name: str, settings: Settings) -> list[Check]:
    model = settings.models[name]
    embedder = build_embedder(name, model)
    servers = ", ".join(model.urls)
    try:
        healthy = await embedder.healthy()
        results = [Check(f"model {name}", healthy,
                         f"{servers} healthy" if healthy else f"{servers} not healthy")]
        try:
            vectors = await embedder.embed([CHECK_TEXT])
        except ModelError as exc:
            results.append(Check(f"model {name} embedding", False, exc.reason))
        else:
            results.append(Check(f"model {name} embedding", True,
                                 f"{len(vectors[0])} dimensions as configured"))
        return results
    finally:
        await embedder.aclose()
