"""Model servers, one module per protocol behind the Embedder interface."""

from __future__ import annotations

from embedworker.config import ModelSettings
from embedworker.embedders.base import Embedder
from embedworker.embedders.errors import ErrorKind, ModelError
from embedworker.embedders.hfspace import HfSpaceEmbedder

__all__ = ["Embedder", "ErrorKind", "ModelError", "build_embedder"]


def build_embedder(name: str, settings: ModelSettings) -> Embedder:
    """The embedder for ``settings.protocol``."""
    if settings.protocol == "hfspace":
        return HfSpaceEmbedder(name, settings)
    raise ValueError(f"models.{name}.protocol: unknown protocol {settings.protocol!r}")
