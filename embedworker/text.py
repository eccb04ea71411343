"""Cleaning of content text before it is sent to a model."""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
# Lone UTF-16 surrogates cannot be encoded as UTF-8 and break JSON encoders downstream.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str, max_chars: int) -> str:
    """Remove NUL bytes and lone surrogates, collapse whitespace, cut to ``max_chars``."""
    if _already_clean(text):
        return text[:max_chars].rstrip()
    text = _SURROGATES.sub("", text.replace("\x00", ""))
    text = _WHITESPACE.sub(" ", text).strip()
    return text[:max_chars].rstrip()


def _already_clean(text: str) -> bool:
    """No NUL, surrogate or whitespace but single inner spaces (most queued texts are so)."""
    return text.isprintable() and "  " not in text and text == text.strip()
