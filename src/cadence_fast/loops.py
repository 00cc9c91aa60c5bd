"""The running event loop, looked up without a system call.

CPython 3.11's `asyncio.get_running_loop()` (and everything built on it: `ensure_future`,
`Future()`, `create_task`) calls getpid() on every lookup, to notice a fork; in a VM that
system call was ~4 % of the event-loop thread's time on the workflow hot path. An object
that lives on one loop keeps a `LoopRef` and asks it instead: one attribute read and an
`is_running()` check, which also notices the object being used from a later loop (tests
run one asyncio.run after another).
"""

from __future__ import annotations

import asyncio


class LoopRef:
    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        """The running loop (call only from code running on it, like get_running_loop)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop
