"""Embed a list of texts with one model, isolating what fails.

A batch is cut to the model's batch size. A request the server finds too big is halved; a
request rejected because of an input (or answered with a malformed response) is bisected until
the offending inputs stand alone, so only they carry the error. A transient error is not
bisected: it says nothing about the inputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from embedworker.embedders import Embedder, ErrorKind, ModelError

Result = list[float] | ModelError

_SPLITTABLE = (ErrorKind.TOO_BIG, ErrorKind.PER_ITEM, ErrorKind.MALFORMED)


async def embed_isolating(embedder: Embedder, texts: Sequence[str]) -> list[Result]:
    """One result per text, in order: its vector, or the error that concerns it."""
    results: list[Result] = [ModelError(ErrorKind.TRANSIENT, "not attempted")] * len(texts)

    async def attempt(indices: Sequence[int]) -> None:
        try:
            vectors = await embedder.embed([texts[i] for i in indices])
        except ModelError as error:
            if error.kind in _SPLITTABLE and len(indices) > 1:
                middle = len(indices) // 2
                await attempt(indices[:middle])
                await attempt(indices[middle:])
                return
            for index in indices:
                results[index] = error
            return
        for index, vector in zip(indices, vectors, strict=True):
            results[index] = vector

    step = max(embedder.max_batch, 1)
    chunks = [range(start, min(start + step, len(texts))) for start in range(0, len(texts), step)]
    await asyncio.gather(*(attempt(chunk) for chunk in chunks))
    return results
