"""The stand-in's command line: `python -m embedworker.standin`."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from embedworker.standin.protocols import PROTOCOLS
from embedworker.standin.server import StandinServer


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of `python -m embedworker.standin`."""
    parser = argparse.ArgumentParser(
        prog="python -m embedworker.standin",
        description="Deterministic stand-in embedding model server (not a model).",
    )
    parser.add_argument("--model", default="e5_small")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="hfspace")
    parser.add_argument("--tei-oversize-status", type=int, choices=(413, 422), default=422)
    parser.add_argument("--openai-shuffle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--openai-base64", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print the URL first so callers know the port."""
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = StandinServer(
        args.model,
        args.dim,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        api_key=args.api_key,
        protocol=args.protocol,
        tei_oversize_status=args.tei_oversize_status,
        openai_shuffle=args.openai_shuffle,
        openai_base64=args.openai_base64,
    )
    server.faults.latency_s = args.latency_ms / 1000.0
    with server:
        print(f"listening on {server.url}", flush=True)
        stop.wait()
    return 0
