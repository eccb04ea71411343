"""A request holds its max_concurrency slot only until the answer's headers arrive: the next
request goes out while the last answer's body is still on its way. Against a loopback server
that sends the first answer's body only when the test says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from embedworker.config import ModelSettings
from embedworker.embedders import build_embedder
from tests.helpers import wait_until


class SlowBodyServer:
    """hfspace on 127.0.0.1; the first answer's body is held back until ``release_first``."""

    def __init__(self) -> None:
        self.arrived: list[list[str]] = []
        self.first_headers_sent = asyncio.Event()
        self.release_first = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                inputs = json.loads(await reader.readexactly(length))["inputs"]
                number = len(self.arrived)
                self.arrived.append(inputs)
                body = json.dumps({"embeddings": [[float(number), 1.0]] * len(inputs)}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body))
                if number == 0:
                    writer.write(body[:5])
                    await writer.drain()
                    self.first_headers_sent.set()
                    await self.release_first.wait()
                    writer.write(body[5:])
                else:
                    writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[SlowBodyServer, str]]:
    server = SlowBodyServer()
    url = await server.start()
    yield server, url
    server.release_first.set()
    await server.stop()


async def test_the_next_request_goes_out_while_an_answer_is_still_arriving(
    slow_server: tuple[SlowBodyServer, str],
) -> None:
    server, url = slow_server
    embedder = build_embedder("e5_small", ModelSettings(
        url=url, dimension=2, column="c", flag_column="f", max_concurrency=1, task=None,
    ))
    try:
        first = asyncio.create_task(embedder.embed(["first"]))
        await asyncio.wait_for(server.first_headers_sent.wait(), 5)
        second = asyncio.create_task(embedder.embed(["second"]))

        # With max_concurrency 1, the second request reaches the server although the first
        # answer's body has not been sent yet.
        async def second_arrived() -> bool:
            return len(server.arrived) == 2

        await wait_until(second_arrived, timeout=5)
        assert not first.done()
        server.release_first.set()

        assert (await asyncio.wait_for(first, 5)).tolist() == [[0.0, 1.0]]
        assert (await asyncio.wait_for(second, 5)).tolist() == [[1.0, 1.0]]
        assert server.arrived == [["first"], ["second"]]
    finally:
        await embedder.aclose()
