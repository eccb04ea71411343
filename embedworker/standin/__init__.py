"""Deterministic stand-in for the embedding model servers embedworker talks to.

For tests, the demo and the benchmarks; it is not a model. It speaks the HTTP protocol of the real
servers (PROTOCOLS: Studify's hfspace, text-embeddings-inference, OpenAI-compatible
/v1/embeddings and Ollama's /api/embed) and answers every input with a unit-norm vector derived
from a hash of the model name and the text, so results are reproducible without loading any model
and the vectors carry no meaning. Faults (latency, error statuses, rejected inputs, malformed
answers, outages) can be injected at run time through ``StandinServer.faults``, ``down()`` and
``up()``.

Modules: vectors (the embeddings), faults (what can be injected), wire (requests, replies and
the Host a protocol runs on), parsing (shared validation), hfspace, tei, openai and ollama (one
protocol each), protocols (the registry), server (StandinServer), httpd (the HTTP plumbing) and
cli (`python -m embedworker.standin`).
"""

from embedworker.standin.cli import main, parse_args
from embedworker.standin.faults import (
    MALFORMS,
    NOT_JSON_BODY,
    POISON_DETAIL,
    RANDOM_ERROR_STATUSES,
    Faults,
)
from embedworker.standin.protocols import PROTOCOLS
from embedworker.standin.server import StandinServer
from embedworker.standin.vectors import TASK_PREFIXES, deterministic_vector
from embedworker.standin.wire import Reply, Request

__all__ = [
    "MALFORMS",
    "NOT_JSON_BODY",
    "POISON_DETAIL",
    "PROTOCOLS",
    "RANDOM_ERROR_STATUSES",
    "TASK_PREFIXES",
    "Faults",
    "Reply",
    "Request",
    "StandinServer",
    "deterministic_vector",
    "main",
    "parse_args",
]
