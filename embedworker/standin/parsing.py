"""Request validation shared by every protocol; a failed check raises Rejected."""

from __future__ import annotations

import json
from typing import Any

from embedworker.standin.vectors import TASK_PREFIXES
from embedworker.standin.wire import EmbedCall


class Rejected(Exception):
    """A request that fails validation; carries the status and detail to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body or reject with 400."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "body must be a JSON object")
    return payload


def validate_call(inputs: list[str], task: object, max_batch: int) -> EmbedCall:
    """Apply the size, task and empty-input rules shared by every protocol."""
    if len(inputs) > max_batch:
        raise Rejected(413, f"batch too large: {len(inputs)} > {max_batch}")
    if not inputs:
        raise Rejected(422, "inputs is empty")
    if task is not None and (not isinstance(task, str) or task not in TASK_PREFIXES):
        raise Rejected(422, f"unknown task: {task!r}")
    for index, text in enumerate(inputs):
        if not text.strip():
            raise Rejected(422, f"input {index} is empty")
    return EmbedCall(inputs, task)


def one_or_many(value: object, name: str, status: int) -> list[str]:
    """A string or a list of strings as a list, or reject with `status`."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(text, str) for text in value):
        return value
    raise Rejected(status, f"{name} must be a string or a list of strings")


def validate_untasked(
    inputs: list[str], max_batch: int, *, oversize: Rejected, empty: Rejected
) -> EmbedCall:
    """validate_call for protocols without tasks, failing with the protocol's own rejections."""
    if len(inputs) > max_batch:
        raise oversize
    try:
        return validate_call(inputs, None, max_batch)
    except Rejected:
        raise empty from None  # with no task and the size checked, only emptiness is left
