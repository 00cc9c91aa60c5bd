"""ExecutionCache.locked: one holder per run, FIFO hand-over, and waiters that are
cancelled (before or after being handed the lock) neither deadlock nor leak the entry."""

from __future__ import annotations

import asyncio

from cadence_fast.history.cache import ExecutionCache

KEY = ("d", "wf", "run")


async def test_holders_run_one_at_a_time_in_arrival_order() -> None:
    cache = ExecutionCache(10)
    order: list[int] = []
    inside = 0

    async def worker(n: int) -> None:
        nonlocal inside
        async with cache.locked(KEY):
            inside += 1
            assert inside == 1
            order.append(n)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(worker(n) for n in range(5)))
    assert order == list(range(5))
    assert cache.idle(KEY)


async def test_a_cancelled_waiter_does_not_block_the_next() -> None:
    cache = ExecutionCache(10)
    release = asyncio.Event()
    got: list[str] = []

    async def holder() -> None:
        async with cache.locked(KEY):
            await release.wait()

    async def waiter(name: str) -> None:
        async with cache.locked(KEY):
            got.append(name)

    h = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    assert not cache.idle(KEY)
    w1 = asyncio.ensure_future(waiter("w1"))
    w2 = asyncio.ensure_future(waiter("w2"))
    await asyncio.sleep(0)
    w1.cancel()
    release.set()
    await asyncio.gather(h, w2)
    assert w1.cancelled() and got == ["w2"]
    assert cache.idle(KEY)


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_lock_on() -> None:
    cache = ExecutionCache(10)
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with cache.locked(KEY):
            got.append(name)

    lock = cache.locked(KEY)
    await lock.__aenter__()
    w1 = asyncio.ensure_future(waiter("w1"))
    w2 = asyncio.ensure_future(waiter("w2"))
    await asyncio.sleep(0)
    await lock.__aexit__(None, None, None)  # hands the lock to w1 ...
    w1.cancel()  # ... which is cancelled before it runs: w2 must still get it
    await asyncio.gather(w1, w2, return_exceptions=True)
    assert got == ["w2"]
    assert cache.idle(KEY)
