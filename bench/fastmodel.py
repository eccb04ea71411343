"""A loopback hfspace model server that costs (almost) no CPU: for measuring the worker alone.

    python bench/fastmodel.py --model bge_m3 --dim 1024 --max-batch 32 --latency-ms 0

`embedworker.standin` computes a vector per input and JSON-encodes it in pure Python (about
1.5 ms per 1024-dimension input), so on a 2-core machine it, not the worker, often sets the pace.
This server answers the same protocol (POST /embed/batch {"inputs", "task"?} ->
{"embeddings", "count", "dim"}; GET /healthz) with vectors drawn from a pool of
pre-encoded unit vectors, chosen by a hash of the text: the answer has the same size and the same
JSON float formatting as the stand-in's, so the worker's decoding work is identical, but building
it is a byte join. It is asyncio, so any number of requests can wait out `--latency-ms` at once
(like the stand-in's one thread per request). Prints "listening on URL" first, like the stand-in.

It also answers the OpenAI protocol (POST /v1/embeddings, GET /v1/models) with
`encoding_format` "base64" (little-endian float32, pre-encoded) or floats, so the bench can
measure what a binary answer saves the worker compared with JSON numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import struct
import zlib

from embedworker.standin import deterministic_vector

POOL_SIZE = 256
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 413: b"Payload Too Large",
           422: b"Unprocessable Entity"}


class FastModel:
    def __init__(self, model: str, dim: int, max_batch: int, latency_s: float,
                 protocol: str = "hfspace") -> None:
        self.model = model
        self.dim = dim
        self.max_batch = max_batch
        self.latency_s = latency_s
        self.protocol = protocol
        vectors = [deterministic_vector(model, f"pool {i}", dim) for i in range(POOL_SIZE)]
        self.pool = [json.dumps(vector).encode() for vector in vectors]
        # OpenAI's encoding_format "base64": little-endian float32 bytes, as a JSON string
        self.pool_base64 = [
            b'"' + base64.b64encode(struct.pack(f"<{dim}f", *vector)) + b'"'
            for vector in vectors
        ]
        self.requests = 0

    def embed_openai(self, body: bytes) -> tuple[int, bytes]:
        """POST /v1/embeddings {"model", "input", "encoding_format"?} -> {"data": [...]}."""
        try:
            payload = json.loads(body)
            inputs = payload["input"]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"error": {"message": "body must be {\\"input\\": [...]}"}}'
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return 400, b'{"error": {"message": "input cannot be empty"}}'
        if len(inputs) > self.max_batch:
            return 413, b'{"error": {"message": "batch size %d exceeds maximum %d"}}' % (
                len(inputs), self.max_batch)
        pool = self.pool_base64 if payload.get("encoding_format") == "base64" else self.pool
        data = b",".join(
            b'{"object": "embedding", "index": %d, "embedding": %s}'
            % (index, pool[zlib.crc32(str(text).encode()) % POOL_SIZE])
            for index, text in enumerate(inputs)
        )
        return 200, b'{"object": "list", "data": [%s], "model": %s, "usage": {}}' % (
            data, json.dumps(payload.get("model", self.model)).encode())

    def embed(self, body: bytes) -> tuple[int, bytes]:
        try:
            payload = json.loads(body)
            inputs = payload["inputs"]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"detail": "body must be {\\"inputs\\": [...]}"}'
        if not isinstance(inputs, list) or not inputs:
            return 422, b'{"detail": "inputs is empty"}'
        if len(inputs) > self.max_batch:
            return 413, b'{"detail": "batch too large: %d > %d"}' % (len(inputs), self.max_batch)
        pool = self.pool
        vectors = b",".join(pool[zlib.crc32(str(text).encode()) % POOL_SIZE] for text in inputs)
        return 200, b'{"embeddings": [%s], "count": %d, "dim": %d}' % (
            vectors, len(inputs), self.dim)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                length = 0
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                body = await reader.readexactly(length) if length else b""
                path = path.split(b"?", 1)[0]
                if method == b"POST" and path in (b"/embed/batch", b"/v1/embeddings"):
                    self.requests += 1
                    if self.latency_s > 0:
                        await asyncio.sleep(self.latency_s)
                    if path == b"/embed/batch":
                        status, answer = self.embed(body)
                    else:
                        status, answer = self.embed_openai(body)
                elif method == b"GET" and path == b"/healthz":
                    status, answer = 200, b'{"status": "ok"}'
                elif method == b"GET" and path == b"/v1/models":
                    status, answer = 200, b'{"object": "list", "data": [{"id": %s}]}' % (
                        json.dumps(self.model).encode())
                else:
                    status, answer = 404, b'{"detail": "Not Found"}'
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % (status, REASONS[status], len(answer))
                )
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass
        finally:
            writer.close()


async def serve(args: argparse.Namespace) -> None:
    model = FastModel(args.model, args.dim, args.max_batch, args.latency_ms / 1000.0,
                      args.protocol)
    server = await asyncio.start_server(model.handle, args.host, args.port, limit=1 << 24)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="e5_small")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--protocol", choices=("hfspace", "openai"), default="hfspace",
                        help="only documents the intent: both protocols are always served")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
