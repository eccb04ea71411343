"""Model servers: one module per protocol, all behind the Embedder interface.

The clients and what they need (httpx, numpy, the decoders) are imported by build_embedder, not
with the package, so that the worker's modules load without them: the daemon claims its first
batch before it builds its model clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedworker.embedders.errors import ErrorKind, ModelError

if TYPE_CHECKING:
    from embedworker.config import ModelSettings
    from embedworker.embedders.base import Embedder, Embedding, Embeddings

__all__ = ["Embedder", "Embedding", "Embeddings", "ErrorKind", "ModelError", "build_embedder"]

_INTERFACE = ("Embedder", "Embedding", "Embeddings")


def __getattr__(name: str) -> Any:
    """The interface's names, from embedders.base (which imports numpy) when first asked for."""
    if name in _INTERFACE:
        from embedworker.embedders import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_embedder(name: str, settings: ModelSettings) -> Embedder:
    """The embedder for ``settings.protocol``."""
    from embedworker.embedders.client import HttpEmbedder, Wire
    from embedworker.embedders.hfspace import HfSpaceWire
    from embedworker.embedders.ollama import OllamaWire
    from embedworker.embedders.openai import OpenAiWire
    from embedworker.embedders.tei import TeiWire

    wires: dict[str, type[HfSpaceWire | TeiWire | OpenAiWire | OllamaWire]] = {
        "hfspace": HfSpaceWire,
        "tei": TeiWire,
        "openai": OpenAiWire,
        "ollama": OllamaWire,
    }
    wire: Wire = wires[settings.protocol](settings)
    return HttpEmbedder(name, settings, wire)
