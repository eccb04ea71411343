"""A tiny HTTP/1.1 server for operators: /healthz, /readyz, /metrics, /status, and the status
page at / with its data, /overview.json.

One request per connection (every response says ``Connection: close``), bounded in size and in
time; only GET is served. Built on asyncio streams so the daemon needs no web framework.

The daemon binds its address before its first claim and serves once that claim is answered, so
what only the answers need (the metrics, the status page, the statistics' JSON) is imported
with the first answer that needs it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from embedworker.db.connect import describe
from embedworker.exits import ListenError

if TYPE_CHECKING:
    from embedworker.db.stats import QueueStatus
    from embedworker.ops.metrics import Metrics

log = structlog.get_logger(__name__)

MAX_HEAD_BYTES = 8 * 1024
MAX_BODY_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION = re.compile(r"^HTTP/1\.[01]$")


@dataclass(frozen=True)
class HealthReport:
    """The answer of a health or readiness check: ``reasons`` say what is wrong."""

    ok: bool
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


ReportSource = Callable[[], HealthReport | Awaitable[HealthReport]]
StatusSource = Callable[[], Awaitable["QueueStatus"]]


def readiness(
    *,
    database: bool,
    listener: bool | None,
    models: Mapping[str, bool],
    model_problems: Mapping[str, str] | None = None,
) -> HealthReport:
    """Ready when the database answers, LISTEN works (None: not used) and a model is up.

    ``model_problems`` says why a model is down; it goes into the details.
    """
    reasons: list[str] = []
    if not database:
        reasons.append("database: unreachable")
    if listener is False:
        reasons.append("listener: not connected")
    if not any(models.values()):
        down = ", ".join(sorted(models)) or "none configured"
        reasons.append(f"models: none reachable ({down})")
    details: dict[str, Any] = {"database": database, "models": dict(models)}
    if model_problems:
        details["model_problems"] = dict(model_problems)
    if listener is not None:
        details["listener"] = listener
    return HealthReport(ok=not reasons, reasons=tuple(reasons), details=details)


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` → (host, port); ValueError if malformed."""
    host, colon, port_text = value.strip().rpartition(":")
    if not colon or not host or not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not an IPv6 address in brackets: {value!r}") from None
    elif any(char in host for char in ":[] \t"):
        raise ValueError(f"an IPv6 address needs brackets, as in [::1]:9464: {value!r}")
    return host, port


@dataclass(frozen=True)
class _Response:
    code: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        lines = [
            f"HTTP/1.1 {self.code} {HTTPStatus(self.code).phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def _json(code: int, payload: Mapping[str, Any], **headers: str) -> _Response:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return _Response(code, body + b"\n", JSON_TYPE, tuple(headers.items()))


def _error(code: int, message: str, **headers: str) -> _Response:
    return _json(code, {"error": message}, **headers)


class ObservabilityServer:
    """Serves the daemon's health, readiness, metrics and queue statistics over HTTP."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: ReportSource,
        ready: ReportSource,
        metrics: Callable[[], Metrics],
        status: StatusSource,
        check_timeout_s: float = 5.0,
        status_timeout_s: float = 5.0,
        metrics_refresh_timeout_s: float = 2.0,
    ):
        self._host = host
        self._requested_port = port
        self._health = health
        self._ready = ready
        self._metrics = metrics
        self._status = status
        self._check_timeout_s = check_timeout_s
        self._status_timeout_s = status_timeout_s
        self._refresh_timeout_s = metrics_refresh_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._routes: dict[str, Callable[[], Awaitable[_Response]]] = {
            "/healthz": self._get_healthz,
            "/readyz": self._get_readyz,
            "/metrics": self._get_metrics,
            "/status": self._get_status,
            "/": self._get_page,
            "/overview.json": self._get_overview,
        }

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when started with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def open_connections(self) -> int:
        """Connections being served right now."""
        return len(self._connections)

    async def bind(self) -> None:
        """Take the address (an address in use fails here) without accepting connections."""
        if self._server is not None:
            raise RuntimeError("the server is already bound")
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._requested_port, limit=MAX_HEAD_BYTES,
                start_serving=False,
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(
                f"cannot listen on http_listen {self._host}:{self._requested_port}: {reason}"
            ) from exc

    async def start(self) -> None:
        """Bind, unless bind() did, and start accepting connections."""
        if self._server is None:
            await self.bind()
        assert self._server is not None
        if self._server.is_serving():
            raise RuntimeError("the server is already started")
        await self._server.start_serving()
        log.info("http.listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and end open connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            response = await self._respond(reader)
            if response is not None:
                writer.write(response.encode())
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        except Exception as exc:
            log.error("http.error", error=describe(exc), exc_info=exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            await _close(writer)

    async def _respond(self, reader: asyncio.StreamReader) -> _Response | None:
        """The response to the one request on this connection; None if the client left."""
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            return _error(400, "incomplete request") if exc.partial.strip() else None
        except asyncio.LimitOverrunError:
            return _error(431, f"request head larger than {MAX_HEAD_BYTES} bytes")
        except TimeoutError:
            return _error(408, "request not received in time")

        parsed = _parse_head(head)
        if isinstance(parsed, _Response):
            return parsed
        method, path, headers = parsed

        unread = await _discard_body(reader, headers)
        if unread is not None:
            return unread
        if method != "GET":
            return _error(405, f"method {method} not allowed", Allow="GET")
        route = self._routes.get(path)
        if route is None:
            return _error(404, f"no such path: {path}")
        try:
            return await route()
        except Exception as exc:
            log.error("http.handler_failed", path=path, error=describe(exc), exc_info=exc)
            return _error(500, "internal error")

    async def _get_healthz(self) -> _Response:
        return _report_response(await self._check(self._health))

    async def _get_readyz(self) -> _Response:
        return _report_response(await self._check(self._ready))

    async def _get_metrics(self) -> _Response:
        metrics = self._metrics()
        try:
            status = await asyncio.wait_for(self._status(), self._refresh_timeout_s)
        except Exception as exc:
            log.warning("http.queue_stats_failed", error=describe(exc))
            metrics.queue_depth_unavailable()
        else:
            metrics.set_queue_depth(status)
        body, content_type = metrics.render()
        return _Response(200, body, content_type)

    async def _get_status(self) -> _Response:
        status, error = await self._read_status()
        if status is None:
            return _json(503, {"status": "fail", "reasons": [error]})
        return _json(200, status)

    async def _get_page(self) -> _Response:
        from embedworker.ops.status_page import HTML_TYPE, status_page

        page = status_page()
        return _Response(200, page.body, HTML_TYPE, page.headers)

    async def _get_overview(self) -> _Response:
        from embedworker.ops.status_page import overview

        (status, error), health, ready = await asyncio.gather(
            self._read_status(), self._check(self._health), self._check(self._ready)
        )
        return _json(200, overview(
            queue=status, queue_error=error or None, health=_report_json(health),
            ready=_report_json(ready), throughput=self._metrics().throughput.window(),
        ))

    async def _read_status(self) -> tuple[dict[str, Any] | None, str]:
        """``/status``'s JSON, or None and why it could not be read."""
        from embedworker.db.stats import to_json_dict

        try:
            status = await asyncio.wait_for(self._status(), self._status_timeout_s)
        except Exception as exc:
            return None, f"queue statistics unavailable: {_reason(exc, self._status_timeout_s)}"
        return to_json_dict(status), ""

    async def _check(self, source: ReportSource) -> HealthReport:
        """Run a check under a timeout; a check that raises or hangs is a failed check."""
        try:
            result = source()
            if isinstance(result, HealthReport):
                return result
            return await asyncio.wait_for(result, self._check_timeout_s)
        except Exception as exc:
            return HealthReport(
                ok=False, reasons=(f"check failed: {_reason(exc, self._check_timeout_s)}",)
            )


def _report_response(report: HealthReport) -> _Response:
    return _json(200 if report.ok else 503, _report_json(report))


def _report_json(report: HealthReport) -> dict[str, Any]:
    return {
        "status": "ok" if report.ok else "fail",
        "reasons": list(report.reasons),
        "checks": dict(report.details),
    }


def _reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    return describe(exc)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | _Response:
    """(method, path, headers with lower-case names), or the 400 response for a bad head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _VERSION.match(parts[2]):
        return _error(400, "malformed request line")
    method, target, _version = parts
    if not target.startswith("/") and not target.startswith(("http://", "https://")):
        return _error(400, "malformed request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name):
            return _error(400, "malformed header line")
        key, value = name.lower(), value.strip()
        if key not in headers:
            headers[key] = value
        elif key != "content-length":
            headers[key] += ", " + value
        elif headers[key] != value:
            return _error(400, "conflicting Content-Length headers")
    return method, urlsplit(target).path or "/", headers


async def _discard_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str]
) -> _Response | None:
    """Read and drop a request body, so closing the socket cannot reset the response."""
    if "transfer-encoding" in headers:
        return _error(400, "request bodies with Transfer-Encoding are not accepted")
    text = headers.get("content-length")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        return _error(400, "malformed Content-Length")
    length = int(text)
    if length > MAX_BODY_BYTES:
        return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return _error(400, "incomplete request body")
    except TimeoutError:
        return _error(408, "request body not received in time")
    return None


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close gracefully, or drop the connection if the peer does not let it close in time."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (ConnectionError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
