"""What the engine's asyncio idioms cost per use on uvloop (perf-findings F2, F3).

Each round awaits 1,000 futures resolved by a `call_soon` (one loop iteration each):
- plain: `await fut` (what a commit or a poll waits on at the least);
- shield: `await asyncio.shield(fut)` (Shard.commit, WorkerAPI._poll, Backlog.persist);
- wait_for event: `await asyncio.wait_for(event.wait(), t)` (TimerQueue._loop on each wake).
Divide the time by 1,000 for the cost of one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import run

ROUND = 1_000


async def _plain() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(ROUND):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        await fut


async def _shield() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(ROUND):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        await asyncio.shield(fut)


async def _wait_for_event() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(ROUND):
        event = asyncio.Event()
        loop.call_soon(event.set)
        await asyncio.wait_for(event.wait(), 10)


@pytest.mark.parametrize("idiom", [_plain, _shield, _wait_for_event], ids=["plain", "shield", "wait_for event"])
def test_await_1000(benchmark: Any, loop: asyncio.AbstractEventLoop, idiom: Any) -> None:
    benchmark.group = "asyncio: 1,000 awaits of a future resolved on the next loop iteration"
    benchmark.pedantic(lambda: run(loop, idiom), rounds=20, iterations=1, warmup_rounds=2)
