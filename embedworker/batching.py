"""Embed a list of texts with one model, isolating what fails.

A batch is cut to the model's batch size. A request the server finds too big is halved; a
request rejected because of an input (or answered with a malformed response) is bisected until
the offending inputs stand alone, so only they carry the error. A transient error is not
bisected: it says nothing about the inputs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from embedworker.embedders import ErrorKind, ModelError

if TYPE_CHECKING:
    from embedworker.embedders import Embedder, Embedding

Result: TypeAlias = "Embedding | ModelError"

_SPLITTABLE = (ErrorKind.TOO_BIG, ErrorKind.PER_ITEM, ErrorKind.MALFORMED)


async def embed_isolating(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    on_request: Callable[[float, str | None], None] | None = None,
) -> list[Result]:
    """One result per text, in order: its vector, or the error that concerns it.

    ``on_request(seconds, error_kind)`` is told about every request made.
    """
    results: list[Result] = [ModelError(ErrorKind.TRANSIENT, "not attempted")] * len(texts)

    def report(started: float, kind: str | None) -> None:
        if on_request is not None:
            on_request(time.monotonic() - started, kind)

    async def attempt(indices: Sequence[int]) -> None:
        started = time.monotonic()
        try:
            vectors = await embedder.embed([texts[i] for i in indices])
        except ModelError as error:
            report(started, error.kind.value)
            if error.kind in _SPLITTABLE and len(indices) > 1:
                middle = len(indices) // 2
                await attempt(indices[:middle])
                await attempt(indices[middle:])
                return
            for index in indices:
                results[index] = error
            return
        report(started, None)
        for index, vector in zip(indices, vectors, strict=True):
            results[index] = vector

    step = max(embedder.max_batch, 1)
    chunks = [range(start, min(start + step, len(texts))) for start in range(0, len(texts), step)]
    await asyncio.gather(*(attempt(chunk) for chunk in chunks))
    return results
