"""`processes = N`: one `embedworker run` that uses N cores.

The process systemd (or the container) started becomes a supervisor of N worker processes,
each a whole daemon (`run --worker-process I`) claiming with SKIP LOCKED like separate copies
would. The operator still sees one service:
- one unit: READY=1 once every worker is ready; WATCHDOG=1 while every worker pings; each worker
  speaks sd_notify to a socket of the supervisor's, not to systemd;
- one set of logs: the workers write to the supervisor's stdout, each line with its `process`;
- one endpoint: the supervisor serves `http_listen`; /metrics adds up every worker's counters
  and histograms (prometheus-client's multiprocess mode), /status and the queue gauges are read
  once, /healthz and /readyz say how each worker is;
- one reload: SIGHUP goes to every worker (RELOADING=1, then READY=1 once all are ready again);
- one clean shutdown: SIGTERM or SIGINT goes to every worker, each finishes or releases its
  batches, and the supervisor exits 0 when all did. A second signal is passed on too.
A worker that exits on its own (a crash, a schema it refuses) stops the others, and the
supervisor exits with that worker's code, so that systemd's Restart= policy decides.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg
import structlog

from embedworker.config import Settings
from embedworker.db.connect import DATABASE_ERRORS, create_pool
from embedworker.db.indexes import column_indexes
from embedworker.db.stats import QueueStatus, StatusReader
from embedworker.exits import EXIT_FAILURE, EXIT_OK
from embedworker.ops.metrics import MULTIPROCESS_ENV, Metrics, collected_registry
from embedworker.ops.server import HealthReport, ObservabilityServer, parse_listen
from embedworker.systemd import notify, watchdog_interval_s

log = structlog.get_logger(__name__)

WORKER_FLAG = "--worker-process"
# How often a worker pings when systemd set no watchdog: the supervisor's own liveness check.
WORKER_WATCHDOG_USEC = 10_000_000
# How often the supervisor adds the worker processes' finished items to the status page's chart.
THROUGHPUT_SAMPLE_S = 5.0


@dataclass
class WorkerProcess:
    """One worker process and what it last told the supervisor."""

    index: int
    notify_path: Path
    process: asyncio.subprocess.Process | None = None
    state: str = "starting"  # starting, ready, reloading, stopping, exited
    last_ping: float = field(default_factory=time.monotonic)

    def receive(self, message: str) -> None:
        for line in message.splitlines():
            if line == "READY=1":
                self.state = "ready"
            elif line == "RELOADING=1":
                self.state = "reloading"
            elif line == "STOPPING=1":
                self.state = "stopping"
            elif line == "WATCHDOG=1":
                self.last_ping = time.monotonic()


class Supervisor:
    def __init__(self, settings: Settings, worker_args: Sequence[str]):
        """``worker_args``: the global options to pass on (``--config PATH``)."""
        self.settings = settings
        self._worker_args = list(worker_args)
        self._workers: list[WorkerProcess] = []
        self._sockets: list[socket.socket] = []
        self._stopping = asyncio.Event()
        self._signals = 0
        # READY=1 is owed to systemd: at start, and after each reload.
        self._ready_owed = True
        self._folder = Path(tempfile.mkdtemp(prefix="embedworker-notify-"))
        # The workers ping at half of this; one silent for all of it is unhealthy.
        self._worker_watchdog_usec = int(os.environ.get("WATCHDOG_USEC") or WORKER_WATCHDOG_USEC)
        self._pool: asyncpg.Pool | None = None
        self._status: StatusReader | None = None
        self.metrics: Metrics | None = None
        self.http: ObservabilityServer | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        try:
            return await self._run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            for sock in self._sockets:
                loop.remove_reader(sock.fileno())
                sock.close()
            shutil.rmtree(self._folder, ignore_errors=True)

    async def _run(self) -> int:
        structlog.contextvars.bind_contextvars(process="supervisor")
        http = await self._start_http()  # an address in use stops the start before any spawn
        side: list[asyncio.Task[None]] = []
        try:
            for index in range(self.settings.processes):
                self._workers.append(self._listen_for(index))
            for worker in self._workers:
                worker.process = await self._spawn(worker)
            log.info("supervisor.started", processes=len(self._workers),
                     pids=[w.process.pid for w in self._workers if w.process])
            side.append(asyncio.create_task(self._watchdog(), name="watchdog"))
            if http is not None:
                side.append(asyncio.create_task(self._count_throughput(), name="throughput"))
            return await self._wait()
        finally:
            for task in side:
                task.cancel()
            if http is not None:
                await http.stop()
            if self._pool is not None:
                await self._pool.close()

    # -- the worker processes ---------------------------------------------------------------

    def _listen_for(self, index: int) -> WorkerProcess:
        path = self._folder / f"notify-{index}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        sock.bind(str(path))
        worker = WorkerProcess(index, path)
        self._sockets.append(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read_notify, sock, worker)
        return worker

    def _read_notify(self, sock: socket.socket, worker: WorkerProcess) -> None:
        try:
            while True:
                worker.receive(sock.recv(4096).decode(errors="replace"))
        except BlockingIOError:
            pass
        self._tell_systemd()

    def _worker_env(self, worker: WorkerProcess) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC")}
        env["NOTIFY_SOCKET"] = str(worker.notify_path)
        env["WATCHDOG_USEC"] = str(self._worker_watchdog_usec)
        return env

    async def _spawn(self, worker: WorkerProcess) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "embedworker", *self._worker_args,
            "run", WORKER_FLAG, str(worker.index),
            env=self._worker_env(worker),
        )

    async def _wait(self) -> int:
        """Until every worker has exited: after a stop signal, or after one exited on its own
        (then the others are stopped)."""
        waits = {asyncio.create_task(w.process.wait()): w for w in self._workers if w.process}
        exit_code = EXIT_OK
        pending = set(waits)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                worker = waits[task]
                code = task.result()
                worker.state = "exited"
                _forget_metrics_of(worker)
                if self._stopping.is_set():
                    log.info("supervisor.worker_exited", process=worker.index, exit_code=code)
                    if code != EXIT_OK and exit_code == EXIT_OK:
                        exit_code = code if code > 0 else EXIT_FAILURE
                    continue
                log.error("supervisor.worker_failed", process=worker.index, exit_code=code)
                exit_code = code if code > 0 else EXIT_FAILURE
                self._stop_all(signal.SIGTERM)
        log.info("supervisor.stopped", exit_code=exit_code)
        return exit_code

    def _stop_all(self, signum: int) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            notify("STOPPING=1")
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signum)

    def _on_stop_signal(self, signum: int) -> None:
        self._signals += 1
        log.info("supervisor.stop_requested", signal=signal.Signals(signum).name,
                 forced=self._signals > 1)
        self._stop_all(signum)

    def _on_reload_signal(self) -> None:
        if self._stopping.is_set():
            return
        notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        self._ready_owed = True
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.state = "reloading"
                worker.process.send_signal(signal.SIGHUP)

    # -- systemd ----------------------------------------------------------------------------

    def _tell_systemd(self) -> None:
        """READY=1 once every worker is ready (after start, and after a reload)."""
        if self._stopping.is_set() or not all(w.state == "ready" for w in self._workers):
            return
        if self._ready_owed:
            self._ready_owed = False
            notify("READY=1", f"STATUS={len(self._workers)} worker processes ready")
            log.info("supervisor.ready", processes=len(self._workers))

    def _silent_workers(self) -> list[int]:
        limit = self._worker_watchdog_usec / 1_000_000
        now = time.monotonic()
        return [w.index for w in self._workers
                if w.state not in ("starting", "exited") and now - w.last_ping > limit]

    async def _watchdog(self) -> None:
        """WATCHDOG=1 to systemd while every worker pings its own watchdog."""
        interval = watchdog_interval_s()
        if interval is None:
            return
        while not self._stopping.is_set():
            silent = self._silent_workers()
            if silent:
                log.error("watchdog.unhealthy", silent_processes=silent)
            else:
                notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # -- the observability endpoint ---------------------------------------------------------

    async def _start_http(self) -> ObservabilityServer | None:
        if not self.settings.http_listen:
            return None
        metrics = self.metrics = Metrics(self.settings.enabled_models)
        host, port = parse_listen(self.settings.http_listen)
        server = ObservabilityServer(host, port, health=self.health, ready=self.readiness,
                                     metrics=lambda: metrics, status=self.queue_status)
        await server.start()
        self.http = server
        return server

    def health(self) -> HealthReport:
        problems = [f"worker process {w.index} has exited" for w in self._workers
                    if w.state == "exited" and not self._stopping.is_set()]
        problems += [f"worker process {index} shows no progress"
                     for index in self._silent_workers()]
        return HealthReport(ok=not problems, reasons=tuple(problems))

    async def readiness(self) -> HealthReport:
        reasons: list[str] = []
        try:
            async with asyncio.timeout(2):
                pool = await self._database()
                await pool.fetchval("SELECT 1")
            database = True
        except DATABASE_ERRORS:  # a timeout included
            database = False
            reasons.append("database: unreachable")
        states = {str(w.index): w.state for w in self._workers}
        not_ready = [index for index, state in states.items() if state != "ready"]
        if not_ready:
            reasons.append(f"worker processes not ready: {', '.join(not_ready)}")
        models = self._models_up()
        if models and not any(models.values()):
            reasons.append(f"models: none reachable ({', '.join(sorted(models))})")
        details = {"database": database, "processes": states, "models": models}
        return HealthReport(ok=not reasons, reasons=tuple(reasons), details=details)

    async def _count_throughput(self) -> None:
        """The status page's chart: what the worker processes finished, from their counters."""
        assert self.metrics is not None
        seen = (0.0, 0.0)
        while True:
            totals = self._finished_totals()
            self.metrics.throughput.record(int(totals[0] - seen[0]), int(totals[1] - seen[1]))
            seen = totals
            await asyncio.sleep(THROUGHPUT_SAMPLE_S)

    def _finished_totals(self) -> tuple[float, float]:
        assert self.metrics is not None
        totals = {"embedworker_items_completed": 0.0, "embedworker_items_failed": 0.0}
        for family in collected_registry(self.metrics.registry).collect():
            if family.name in totals:
                totals[family.name] = sum(sample.value for sample in family.samples
                                          if sample.name.endswith("_total"))
        return totals["embedworker_items_completed"], totals["embedworker_items_failed"]

    def _models_up(self) -> dict[str, bool]:
        """Each model is up where every worker process finds it up."""
        assert self.metrics is not None
        up: dict[str, bool] = {}
        for family in collected_registry(self.metrics.registry).collect():
            if family.name == "embedworker_model_up":
                for sample in family.samples:
                    up[sample.labels["model"]] = sample.value >= 1
        return up

    async def queue_status(self) -> QueueStatus:
        from embedworker.service import model_columns

        pool = await self._database()
        if self._status is None:
            self._status = StatusReader(pool)
        models = model_columns(self.settings)
        status = await self._status.read(models, self.settings.max_retries)
        return replace(status, indexes=await column_indexes(pool, models))

    async def _database(self) -> asyncpg.Pool:
        """A small pool for /readyz, /status and the queue gauges, made on first use."""
        if self._pool is None:
            self._pool = await create_pool(self.settings.database_url, max_size=2)
        return self._pool


def _forget_metrics_of(worker: WorkerProcess) -> None:
    """A worker that exited no longer counts in the live gauges (its counters stay)."""
    if worker.process is not None and os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.process.pid)  # type: ignore[no-untyped-call]
