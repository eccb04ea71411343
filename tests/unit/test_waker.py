"""The waker: one idle worker per wake-up, none lost, all on shutdown."""

from __future__ import annotations

import asyncio
import time

from embedworker.waker import Waker


async def idle_workers(
    waker: Waker, count: int, max_wait_s: float = 5.0
) -> list[asyncio.Task[str]]:
    tasks = [asyncio.create_task(waker.wait(max_wait_s)) for _ in range(count)]
    await asyncio.sleep(0)  # let every task start waiting
    return tasks


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_wake_up_wakes_one_idle_worker() -> None:
    waker = Waker()
    tasks = await idle_workers(waker, 4)
    waker.wake()
    await settle()
    assert [task.done() for task in tasks].count(True) == 1
    assert next(task for task in tasks if task.done()).result() == "notify"
    waker.wake_all()
    await asyncio.gather(*tasks)


async def test_each_wake_up_wakes_another_worker() -> None:
    waker = Waker()
    tasks = await idle_workers(waker, 3)
    waker.wake()
    waker.wake()
    await settle()
    assert [task.done() for task in tasks].count(True) == 2
    waker.wake_all()
    await asyncio.gather(*tasks)


async def test_wake_all_wakes_every_idle_worker() -> None:
    waker = Waker()
    tasks = await idle_workers(waker, 4)
    waker.wake_all()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 1.0) == ["notify"] * 4


async def test_a_wake_up_with_nobody_waiting_is_kept_for_the_next_wait() -> None:
    waker = Waker()
    waker.wake()
    assert await asyncio.wait_for(waker.wait(5.0), 1.0) == "notify"


async def test_clear_drops_a_kept_wake_up() -> None:
    waker = Waker()
    waker.wake()
    waker.clear()
    assert await waker.wait(0.01) == "poll"


async def test_a_worker_that_timed_out_is_not_woken_later() -> None:
    waker = Waker()
    assert await waker.wait(0.01) == "poll"
    tasks = await idle_workers(waker, 1)
    waker.wake()  # must reach the live waiter, not the one that timed out
    assert await asyncio.wait_for(tasks[0], 1.0) == "notify"


async def test_a_due_timer_wakes_a_worker() -> None:
    waker = Waker()
    waker.wake_at(time.monotonic() + 0.02)
    assert await asyncio.wait_for(waker.wait(5.0), 1.0) == "timer"
