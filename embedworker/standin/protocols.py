"""The protocols the stand-in speaks, by the name `--protocol` and StandinServer accept."""

from __future__ import annotations

from embedworker.standin.hfspace import handle_hfspace
from embedworker.standin.ollama import handle_ollama
from embedworker.standin.openai import handle_openai
from embedworker.standin.tei import handle_tei
from embedworker.standin.wire import ProtocolHandler

PROTOCOLS: dict[str, ProtocolHandler] = {
    "hfspace": handle_hfspace,
    "tei": handle_tei,
    "openai": handle_openai,
    "ollama": handle_ollama,
}
