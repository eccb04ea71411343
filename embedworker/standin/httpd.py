"""HTTP plumbing: a threading HTTP/1.1 server that turns each request into a Request, asks its
`respond` callable for the Reply and writes it, and can drop every open connection at once."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from embedworker.standin.wire import Reply, Request, detail_reply

Responder = Callable[[Request], Reply]


class HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows what answers its requests and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[Handler], respond: Responder
    ) -> None:
        self.respond = respond
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.dropped = False
        super().__init__(address, handler)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection, or drop it at once if the server is already down."""
        with self.connections_lock:
            if not self.dropped:
                self.connections.add(connection)
                return
        hang_up(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection that has been closed."""
        with self.connections_lock:
            self.connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down every kept-alive connection so clients see the outage at once."""
        with self.connections_lock:
            self.dropped = True
            connections = list(self.connections)
        for connection in connections:
            hang_up(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def hang_up(connection: socket.socket) -> None:
    """Shut a connection down both ways, whatever its state."""
    with contextlib.suppress(OSError):  # the peer may have closed it already
        connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the server's `respond` and writes the Reply."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        """The request body, or None when its framing is unsupported (the connection closes)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            return None
        return self.rfile.read(int(length))

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(detail_reply(411, "a valid Content-Length is required"))
            return
        path = self.path.split("?", 1)[0]
        request = Request(self.command, path, self.headers, body)
        try:
            reply = self.server.respond(request)
        except Exception as exc:  # a stand-in bug must not hang the client
            reply = detail_reply(500, f"stand-in error: {exc!r}")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""
