"""The stand-in's embeddings: reproducible unit-norm vectors derived from a hash, no model."""

from __future__ import annotations

import hashlib
import math
import random

TASK_PREFIXES: dict[str, str] = {"passage": "passage: ", "query": "query: "}


def deterministic_vector(model: str, text: str, dim: int) -> list[float]:
    """Return a unit-norm vector of `dim` floats that depends only on `model` and `text`."""
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    uniform = random.Random(int.from_bytes(digest[:8], "big")).random
    out: list[float] = []
    push = out.append
    # Box-Muller gives two gaussians per pair of uniforms; ~3x faster than Random.gauss.
    for _ in range((dim + 1) // 2):
        radius = math.sqrt(-2.0 * math.log(1.0 - uniform()))
        angle = math.tau * uniform()
        push(radius * math.cos(angle))
        push(radius * math.sin(angle))
    del out[dim:]
    scale = 1.0 / math.hypot(*out)
    return [x * scale for x in out]
