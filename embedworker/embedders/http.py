"""HTTP plumbing shared by the protocols: one client per model, status mapping, retries."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.transport import AiohttpTransport

# Attempts of one request before a transient error is given back to the worker.
REQUEST_ATTEMPTS = 3
RETRY_WAIT_BASE_S = 0.5
RETRY_WAIT_MAX_S = 10.0
_BATCH_SIZE_WORDS = ("batch", "too many", "too large", "too big", "max_client_batch_size")

T = TypeVar("T")


MAX_CONNECTIONS = 32


class ServerClient:
    """One model server: httpx's client, and its embedding POST made cheap.

    A POST goes to the client's transport directly, with the URL and headers merged once per
    path: it uses none of the client's per-request features (redirects, cookies, auth flows,
    event hooks), and those cost about as much CPU as the rest of the request together
    (bench/httpcost.py). Everything else (health checks, a server's limits) goes through the
    client as usual.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport or AiohttpTransport(max_connections=MAX_CONNECTIONS)
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=self._transport,
        )
        self._targets: dict[str, _Target] = {}

    async def post(
        self, path: str, content: bytes, on_headers: Callable[[], None] | None = None
    ) -> bytes:
        """POST ``content`` (JSON) once; the body of a 2xx answer, or a ModelError of the
        right class. ``on_headers()`` is called when the answer's headers arrive: the server
        has done its work by then, and only the body remains to be read."""
        target = self._targets.get(path) or self._target(path)
        request = httpx.Request(
            "POST", target.url, headers=target.headers, content=content,
            extensions=target.extensions,
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                if on_headers is not None:
                    on_headers()
                body = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise ModelError(
                ErrorKind.TRANSIENT, f"timeout calling {path}", unreachable=True
            ) from None
        except httpx.TransportError as exc:
            raise ModelError(
                ErrorKind.TRANSIENT, f"cannot reach model server: {type(exc).__name__}",
                unreachable=True,
            ) from None
        if not response.is_success:
            raise error_for_status(response)
        return body

    def _target(self, path: str) -> _Target:
        merged = self.http.build_request("POST", path, headers=_JSON)
        headers = httpx.Headers(
            [(key, value) for key, value in merged.headers.multi_items()
             if key.lower() != "content-length"]
        )
        target = _Target(merged.url, headers, merged.extensions)
        self._targets[path] = target
        return target

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    headers: httpx.Headers
    extensions: dict[str, Any]


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()``; a transient ModelError is tried again briefly, honouring Retry-After."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(REQUEST_ATTEMPTS),
        wait=_wait_honouring_retry_after,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")


async def get_json(client: httpx.AsyncClient, path: str) -> Any:
    """GET ``path``; the decoded JSON, or None when it fails in any way."""
    try:
        response = await client.get(path)
        return response.json() if response.is_success else None
    except (httpx.HTTPError, ValueError):
        return None


async def get_ok(client: httpx.AsyncClient, path: str) -> bool:
    """True when GET ``path`` answers 2xx, and its JSON "status", if any, is "ok"."""
    try:
        response = await client.get(path)
    except httpx.HTTPError:
        return False
    if not response.is_success:
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return not isinstance(body, dict) or body.get("status", "ok") in ("ok", "healthy")


_JSON = {"Content-Type": "application/json"}


def error_for_status(response: httpx.Response) -> ModelError:
    """Map a non-2xx answer onto the error classes."""
    status = response.status_code
    detail = _detail(response)
    reason = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status == 413 or (status == 422 and _mentions_batch_size(detail)):
        return ModelError(ErrorKind.TOO_BIG, reason)
    if status in (400, 422):
        return ModelError(ErrorKind.PER_ITEM, reason)
    if status in (401, 403):
        return ModelError(ErrorKind.REFUSED, f"{reason} (check the model's api_key)")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return ModelError(ErrorKind.TRANSIENT, reason, retry_after_s=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "msg"):
            if key in body:
                value = body[key]
                if isinstance(value, dict) and "message" in value:
                    value = value["message"]
                return str(value)[:200]
    return str(body)[:200]


def _mentions_batch_size(detail: str) -> bool:
    lowered = detail.lower()
    return any(word in lowered for word in _BATCH_SIZE_WORDS)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.kind is ErrorKind.TRANSIENT


def _wait_honouring_retry_after(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, ModelError) and exc.retry_after_s is not None:
        retry_after: float = exc.retry_after_s
        return min(retry_after, RETRY_WAIT_MAX_S)
    return min(RETRY_WAIT_BASE_S * 2.0 ** (state.attempt_number - 1), RETRY_WAIT_MAX_S)
