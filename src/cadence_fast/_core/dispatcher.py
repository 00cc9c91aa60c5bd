"""The matching hot path: hand tasks to waiting pollers (Cython, pure-Python mode).

One `Dispatcher` per loaded task list. It holds
- the waiting pollers: a FIFO of asyncio futures, one per long poll with nothing to take;
- the ready buffer: tasks already persisted in the backlog (or re-queued), in order;
- query offers: sync-only tasks (queries) whose sender waits for a poller to take them;
  pollers take these before the buffer, as Go matching gives queries priority.

It knows nothing about tasks (they are opaque objects), storage or time: the task list
manager (`cadence_fast.matching.task_list`) owns persistence, expiry and ack levels. A
future that is already done (its poll timed out or was cancelled) is skipped, so a
timed-out poll never needs to unregister itself: that keeps both sides O(1).

This module must not import anything of cadence_fast outside `_core`: it is compiled
on its own by setup.py and must also run uncompiled (CADENCE_FAST_PURE=1).
"""

from __future__ import annotations

from collections import deque

import cython  # a runtime dependency: its shadow module runs the pure mode uncompiled


@cython.cclass
class Dispatcher:
    """Waiting pollers, the ready buffer and query offers of one task list."""

    _pollers: deque  # futures of waiting polls
    _ready: deque  # buffered tasks
    _offers: deque  # (task, future) of pending query offers
    _closed: cython.bint

    def __init__(self) -> None:
        self._pollers = deque()
        self._ready = deque()
        self._offers = deque()
        self._closed = False

    # --- task side -----------------------------------------------------------------

    def offer(self, task: object) -> bool:
        """Sync match: give `task` to the oldest waiting poller. False if none waits."""
        pollers = self._pollers
        while pollers:
            fut = pollers.popleft()
            if not fut.done():
                fut.set_result(task)
                return True
        return False

    def put(self, task: object) -> bool:
        """Deliver to a waiting poller, else append to the ready buffer. True if matched."""
        if self.offer(task):
            return True
        self._ready.append(task)
        return False

    def put_front(self, task: object) -> bool:
        """Like put, but a buffered task goes first (a re-queued task keeps its place)."""
        if self.offer(task):
            return True
        self._ready.appendleft(task)
        return False

    def offer_wait(self, task: object, fut: object) -> None:
        """A sync-only offer: `fut` gets True once a poller took `task`.

        If no poller waits now, the offer is queued for the next poll; the sender makes
        `fut` done (False) on its own timeout, and a done offer is skipped.
        """
        if self.offer(task):
            fut.set_result(True)  # type: ignore[attr-defined]
        else:
            self._offers.append((task, fut))

    # --- poller side ----------------------------------------------------------------

    def take(self) -> object:
        """A task for a poll without waiting: a pending query offer first, then the buffer."""
        offers = self._offers
        while offers:
            task, fut = offers.popleft()
            if not fut.done():
                fut.set_result(True)
                return task
        if self._ready:
            return self._ready.popleft()
        return None

    def wait(self, fut: object) -> None:
        """Register a poll with nothing to take; its future gets the next offered task."""
        if self._closed:
            fut.set_result(None)  # type: ignore[attr-defined]
        else:
            self._pollers.append(fut)

    # --- introspection and shutdown -----------------------------------------------------

    def ready_count(self) -> int:
        return len(self._ready)

    def offer_count(self) -> int:
        n = 0
        for _task, fut in self._offers:
            if not fut.done():
                n += 1
        return n

    def poller_count(self) -> int:
        """Polls waiting right now (drops finished ones from the front first)."""
        pollers = self._pollers
        while pollers and pollers[0].done():
            pollers.popleft()
        n = 0
        for fut in pollers:
            if not fut.done():
                n += 1
        return n

    def drain_ready(self) -> list:
        """Remove and return every buffered task (the list is unloading)."""
        tasks = list(self._ready)
        self._ready.clear()
        return tasks

    def close(self) -> None:
        """Every waiting poll gets None now, every pending offer False; later polls get None."""
        self._closed = True
        pollers = self._pollers
        while pollers:
            fut = pollers.popleft()
            if not fut.done():
                fut.set_result(None)
        offers = self._offers
        while offers:
            _task, fut = offers.popleft()
            if not fut.done():
                fut.set_result(False)

    def is_closed(self) -> bool:
        return self._closed
