"""Every command runs on uvloop's event loop."""

from __future__ import annotations

import asyncio

import uvloop

from embedworker import loop


def test_run_returns_the_result_from_a_uvloop_loop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(main()) == uvloop.Loop.__module__
