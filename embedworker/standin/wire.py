"""What a protocol handler deals in: requests, replies, embed calls, and the server it runs on.

A protocol (hfspace.py, tei.py, openai.py, ollama.py) is a ProtocolHandler: it routes one Request
and answers one Reply, sending embed POSTs through `Host.run_embed` with its own Parser, Renderer
and ErrorRenderer. StandinServer is the Host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Literal, Protocol

from embedworker.standin.faults import Faults


@dataclass(frozen=True)
class Request:
    """One HTTP request as seen by a protocol handler."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, raw body and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    """Encode `payload` as JSON (NaN allowed, as a buggy server would send it)."""
    return Reply(status, json.dumps(payload).encode(), headers or {})


def detail_reply(status: int, detail: str, headers: dict[str, str] | None = None) -> Reply:
    """The FastAPI-style error answer {"detail": ...}."""
    return json_reply(status, {"detail": detail}, headers)


@dataclass(frozen=True)
class EmbedCall:
    """A validated embed request: raw inputs, the optional task, whether to send base64 vectors."""

    inputs: list[str]
    task: str | None
    base64: bool = False


# What went wrong in the embed pipeline, so each protocol can word its error answer.
Failure = Literal["unauthorized", "unhealthy", "injected", "rejected", "poison"]

Parser = Callable[[bytes], EmbedCall]
Renderer = Callable[[EmbedCall, list[list[float]], int], object]
ErrorRenderer = Callable[[Failure, int, str, dict[str, str]], Reply]


def detail_error(failure: Failure, status: int, message: str, headers: dict[str, str]) -> Reply:
    """hfspace errors: FastAPI's {"detail": ...} whatever the failure."""
    return detail_reply(status, message, headers)


def word_count(texts: list[str]) -> int:
    """A stand-in token count: whitespace-separated words, at least one per input."""
    return sum(max(1, len(text.split())) for text in texts)


class Host(Protocol):
    """The server a protocol handler answers for: its settings, faults and embed pipeline."""

    model: str
    max_batch: int
    tei_oversize_status: int
    openai_shuffle: bool
    openai_base64: bool
    faults: Faults

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the expected bearer token (always true without one)."""
        ...

    def run_embed(
        self,
        request: Request,
        parse: Parser,
        render: Renderer,
        *,
        error: ErrorRenderer = ...,
        poison_status: int = ...,
    ) -> Reply:
        """Run one embed POST through the fault pipeline, then embed and render the answer."""
        ...


ProtocolHandler = Callable[[Host, Request], Reply]
