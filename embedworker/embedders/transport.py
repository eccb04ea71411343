"""The transport under httpx for model servers: aiohttp's HTTP/1.1, answers read whole.

httpx's own transport (httpcore on anyio) reads an answer in 64 KB pieces, each through
several Python layers, and a BGE-M3 answer for 32 inputs is 1.4 MB of JSON. aiohttp parses
HTTP in C and reads a body into one buffer. httpx stays the client API: base URL, headers,
timeouts, the Response and its errors are httpx's; only the bytes move through aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import aiohttp

READ_BUFFER_BYTES = 8 * 1024 * 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (and connection pool) per httpx client."""

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop. aiohttp is
        # imported then too (0.1 s, most of it its SSL contexts), after the daemon's first claim.
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                auto_decompress=False,  # httpx decodes a Content-Encoding itself
                # A whole answer fits in the read buffer, so reading it never pauses the socket
                # (the default, 64 KB, pauses and resumes it every 128 KB of a 1.4 MB answer).
                read_bufsize=READ_BUFFER_BYTES,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors(request):
            response = await self._get_session().request(
                request.method,
                str(request.url),
                headers=request.headers,
                data=request.content or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_WholeBody(response, request),
            request=request,
        )

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        known = self._timeouts.get(key)
        if known is None:
            import aiohttp

            pool, connect, read = key
            known = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = known
        return known

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _WholeBody(httpx.AsyncByteStream):
    """The answer's body as one piece."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            yield await self._response.read()

    async def aclose(self) -> None:
        self._response.release()


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp's failures as the httpx errors they correspond to."""
    import aiohttp

    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except TimeoutError as exc:  # aiohttp's timeouts all derive from it
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
