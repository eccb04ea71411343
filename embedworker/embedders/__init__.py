"""Model servers: one module per protocol, all behind the Embedder interface."""

from __future__ import annotations

from embedworker.config import ModelSettings
from embedworker.embedders.base import Embedder, Embedding, Embeddings
from embedworker.embedders.client import HttpEmbedder, Wire
from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.hfspace import HfSpaceWire
from embedworker.embedders.ollama import OllamaWire
from embedworker.embedders.openai import OpenAiWire
from embedworker.embedders.tei import TeiWire

__all__ = ["Embedder", "Embedding", "Embeddings", "ErrorKind", "ModelError", "build_embedder"]

WIRES: dict[str, type[HfSpaceWire | TeiWire | OpenAiWire | OllamaWire]] = {
    "hfspace": HfSpaceWire,
    "tei": TeiWire,
    "openai": OpenAiWire,
    "ollama": OllamaWire,
}


def build_embedder(name: str, settings: ModelSettings) -> Embedder:
    """The embedder for ``settings.protocol``."""
    wire: Wire = WIRES[settings.protocol](settings)
    return HttpEmbedder(name, settings, wire)
