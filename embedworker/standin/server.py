"""StandinServer: the stand-in's lifecycle, request counters and embed pipeline.

Each request goes to the configured protocol's handler (PROTOCOLS); embed POSTs come back through
`run_embed`, which applies the injected faults before validating, embedding and rendering.
"""

from __future__ import annotations

import threading
from types import TracebackType

from embedworker.standin.faults import NOT_JSON_BODY, POISON_DETAIL, Faults, malformed
from embedworker.standin.httpd import Handler, HTTPServer
from embedworker.standin.parsing import Rejected
from embedworker.standin.protocols import PROTOCOLS
from embedworker.standin.vectors import TASK_PREFIXES, deterministic_vector
from embedworker.standin.wire import (
    EmbedCall,
    ErrorRenderer,
    Parser,
    Renderer,
    Reply,
    Request,
    detail_error,
    json_reply,
)


class StandinServer:
    """A threaded HTTP stand-in model server with injectable faults and request counters."""

    def __init__(
        self,
        model: str = "e5_small",
        dim: int = 384,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_batch: int = 64,
        api_key: str | None = None,
        protocol: str = "hfspace",
        tei_oversize_status: int = 422,
        openai_shuffle: bool = True,
        openai_base64: bool = True,
    ) -> None:
        """`tei_oversize_status` answers an oversize TEI batch (413 or 422, as TEI versions
        differ); `openai_shuffle` sends /v1/embeddings data in reverse order of index;
        `openai_base64=False` ignores encoding_format and always sends float lists."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
        if tei_oversize_status not in (413, 422):
            raise ValueError(f"tei_oversize_status must be 413 or 422, not {tei_oversize_status}")
        self.model = model
        self.dim = dim
        self.host = host
        self.max_batch = max_batch
        self.api_key = api_key
        self.protocol = protocol
        self.tei_oversize_status = tei_oversize_status
        self.openai_shuffle = openai_shuffle
        self.openai_base64 = openai_base64
        self.faults = Faults()
        self._port = port
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests = 0
        self._gets = 0
        self._inputs_embedded = 0
        self._batch_sizes: list[int] = []
        self._texts: list[str] = []
        self._tasks: list[str | None] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> StandinServer:
        """Start listening (on the same port as before if it was started already)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = HTTPServer((self.host, self._port), Handler, self.handle)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"standin-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.drop_connections()
        if thread is not None:
            thread.join()

    def down(self) -> None:
        """Simulate an outage: connections are refused until `up()`."""
        self.stop()

    def up(self) -> None:
        """End an outage: listen again on the same port."""
        self.start()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (0 before the first start when constructed with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL clients should use, e.g. http://127.0.0.1:8123."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self._port}"

    @property
    def is_up(self) -> bool:
        """Whether the server is listening."""
        return self._httpd is not None

    # -- counters -------------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Embed POSTs received, whatever their answer."""
        with self._lock:
            return self._requests

    @property
    def gets(self) -> int:
        """GET requests received: health checks and info."""
        with self._lock:
            return self._gets

    @property
    def inputs_embedded(self) -> int:
        """Inputs answered with a 200 (malformed answers included)."""
        with self._lock:
            return self._inputs_embedded

    @property
    def batch_sizes(self) -> list[int]:
        """Input count of every embed request that passed validation."""
        with self._lock:
            return list(self._batch_sizes)

    @property
    def texts(self) -> list[str]:
        """Raw (unprefixed) inputs of every embed request that passed validation, in order."""
        with self._lock:
            return list(self._texts)

    @property
    def tasks(self) -> list[str | None]:
        """The task (hfspace "query" or "passage", or None) each input of ``texts`` came with."""
        with self._lock:
            return list(self._tasks)

    def reset_counters(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests = 0
            self._gets = 0
            self._inputs_embedded = 0
            self._batch_sizes.clear()
            self._texts.clear()
            self._tasks.clear()

    # -- request handling -----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one request with the configured protocol."""
        if request.method == "GET":
            with self._lock:
                self._gets += 1
        return PROTOCOLS[self.protocol](self, request)

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the expected bearer token (always true without one)."""
        if self.api_key is None:
            return True
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def run_embed(
        self,
        request: Request,
        parse: Parser,
        render: Renderer,
        *,
        error: ErrorRenderer = detail_error,
        poison_status: int = 422,
    ) -> Reply:
        """Run one embed POST through the fault pipeline, then embed and render the answer.

        `error` words every failure the protocol's way; a poisoned batch answers `poison_status`.
        """
        with self._lock:
            self._requests += 1
        early = self._early_fault(request, error)
        if early is not None:
            return early
        try:
            call = parse(request.body)
        except Rejected as exc:
            return error("rejected", exc.status, exc.detail, {})
        self._record(call)
        marker = self.faults.poison_marker
        if marker is not None and any(marker in text for text in call.inputs):
            return error("poison", poison_status, POISON_DETAIL, {})
        return self._embed_answer(call, render)

    def _early_fault(self, request: Request, error: ErrorRenderer) -> Reply | None:
        """Auth, health, injected statuses and latency: everything before validation."""
        if not self.authorized(request):
            return error("unauthorized", 401, "invalid token", {})
        if not self.faults.healthy:
            return error("unhealthy", 503, "model loading", {})
        injected = self.faults.take_injected()
        if injected is not None:
            status, retry_after = injected
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return error("injected", status, f"injected {status}", headers)
        if self.faults.latency_s > 0:
            self._stopping.wait(self.faults.latency_s)
        return None

    def _record(self, call: EmbedCall) -> None:
        with self._lock:
            self._batch_sizes.append(len(call.inputs))
            self._texts.extend(call.inputs)
            self._tasks.extend([call.task] * len(call.inputs))

    def _embed_answer(self, call: EmbedCall, render: Renderer) -> Reply:
        malform = self.faults.malform
        if malform == "not_json":
            self._count_embedded(len(call.inputs))
            return Reply(200, NOT_JSON_BODY)
        prefix = TASK_PREFIXES[call.task] if call.task is not None else ""
        vectors = [
            deterministic_vector(self.model, prefix + text, self.dim) for text in call.inputs
        ]
        if malform is not None:
            vectors = malformed(vectors, malform)
        self._count_embedded(len(call.inputs))
        return json_reply(200, render(call, vectors, self.dim))

    def _count_embedded(self, n: int) -> None:
        with self._lock:
            self._inputs_embedded += n
