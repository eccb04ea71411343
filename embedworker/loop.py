"""The event loop every command runs on: uvloop's.

uvloop is asyncio's loop on libuv, with its sockets, transports and callbacks in C: the
worker's CPU per item falls by 5-12 % in a drain, the most with JSON answers (measured with
bench/whatif.py before it was adopted; see the README's Performance), for no change of
behaviour: it implements the same asyncio interfaces (signals, subprocesses, timers) that
asyncpg and aiohttp use.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a uvloop event loop."""
    return uvloop.run(main)
