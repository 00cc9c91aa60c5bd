"""The matching dispatcher (`_core.dispatcher`): 100,000 tasks matched to pollers, compiled and pure.

Three shapes, each moving 100,000 tasks through one `Dispatcher` with real asyncio
futures (what a long poll waits on):
- sync match: every task finds a poller already waiting (the hot path under load);
- buffered: the tasks arrive first, the polls take them afterwards;
- interleaved: a poll waits, a task arrives, the poll gets it; one pair at a time,
  with half of the waiting polls already timed out (done futures are skipped).
"""

from __future__ import annotations

import asyncio
from typing import Any

from support import core_module

TASKS = 100_000


def _tasks() -> list[object]:
    return [object() for _ in range(TASKS)]


def test_sync_match_100k(benchmark: Any, impl: str, loop: asyncio.AbstractEventLoop) -> None:
    dispatcher = core_module("dispatcher", impl)
    benchmark.group = "dispatcher: 100k tasks"
    tasks = _tasks()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        d = dispatcher.Dispatcher()
        futures = [loop.create_future() for _ in range(TASKS)]
        for f in futures:
            d.wait(f)
        return (d, futures), {}

    def match(d: Any, futures: list[asyncio.Future[Any]]) -> int:
        matched = 0
        for t in tasks:
            matched += d.put(t)
        return matched

    matched = benchmark.pedantic(match, setup=setup, rounds=10, iterations=1)
    assert matched == TASKS


def test_buffered_100k(benchmark: Any, impl: str) -> None:
    dispatcher = core_module("dispatcher", impl)
    benchmark.group = "dispatcher: 100k tasks"
    tasks = _tasks()

    def buffer_then_take() -> int:
        d = dispatcher.Dispatcher()
        for t in tasks:
            d.put(t)
        taken = 0
        while d.take() is not None:
            taken += 1
        return taken

    taken = benchmark.pedantic(buffer_then_take, rounds=10, iterations=1)
    assert taken == TASKS


def test_interleaved_100k(benchmark: Any, impl: str, loop: asyncio.AbstractEventLoop) -> None:
    dispatcher = core_module("dispatcher", impl)
    benchmark.group = "dispatcher: 100k tasks"
    tasks = _tasks()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        futures = [loop.create_future() for _ in range(2 * TASKS)]
        for f in futures[::2]:
            f.cancel()  # a poll that timed out: skipped, never unregistered
        return (futures,), {}

    def interleave(futures: list[asyncio.Future[Any]]) -> int:
        d = dispatcher.Dispatcher()
        matched = 0
        it = iter(futures)
        for t in tasks:
            if d.take() is None:
                d.wait(next(it))
                d.wait(next(it))
            matched += d.put(t)
        return matched

    matched = benchmark.pedantic(interleave, setup=setup, rounds=10, iterations=1)
    assert matched == TASKS
