"""The mutable-state cache: a bounded LRU of open runs, and one asyncio lock per run.

One writer per run (DESIGN §4): every transition holds the run's lock from load to
commit. The LRU never evicts the state out from under a holder: a holder keeps its own
reference and puts the state back after its commit.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Any

RunKey = tuple[str, str, str]  # (domain_id, workflow_id, run_id)


class _RunLock:
    """A FIFO lock for one run, made only while someone holds or waits for it.

    Not asyncio.Lock: an uncontended acquire (nearly every one) is a flag here, where
    asyncio.Lock costs a lock object per entry and a coroutine per acquire, several times
    per workflow step. `users` counts the holder and the waiters: at 0 the entry goes.
    """

    __slots__ = ("held", "users", "waiters")

    def __init__(self) -> None:
        self.held = False
        self.users = 0
        self.waiters: deque[asyncio.Future[None]] | None = None

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                # Ownership passes straight to the next waiter (FIFO, no barging).
                fut.set_result(None)
                return
        self.held = False


class ExecutionCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lru: OrderedDict[RunKey, Any] = OrderedDict()
        self._locks: dict[RunKey, _RunLock] = {}
        # workflow id -> current run id, for requests that leave run_id empty
        self._current: OrderedDict[tuple[str, str], str] = OrderedDict()

    def get(self, key: RunKey) -> Any | None:
        ms = self._lru.get(key)
        if ms is not None:
            self._lru.move_to_end(key)
        return ms

    def put(self, key: RunKey, ms: Any) -> None:
        self._lru[key] = ms
        self._lru.move_to_end(key)
        while len(self._lru) > self.capacity:
            self._lru.popitem(last=False)

    def put_if_absent(self, key: RunKey, ms: Any) -> Any:
        """Cache a freshly created run unless a reader already loaded it from the store.

        The queues learn of a commit before its writer resumes; whatever they loaded
        meanwhile is the committed state and may already have moved on: keep it."""
        cached = self._lru.get(key)
        if cached is not None:
            return cached
        self.put(key, ms)
        return ms

    def evict(self, key: RunKey) -> None:
        self._lru.pop(key, None)

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self, predicate: Any = None) -> None:
        if predicate is None:
            self._lru.clear()
            self._current.clear()
            return
        for key in [k for k in self._lru if predicate(k[1])]:
            del self._lru[key]
        for ckey in [k for k in self._current if predicate(k[1])]:
            del self._current[ckey]

    def get_current(self, domain_id: str, workflow_id: str) -> str | None:
        return self._current.get((domain_id, workflow_id))

    def set_current(self, domain_id: str, workflow_id: str, run_id: str) -> None:
        key = (domain_id, workflow_id)
        self._current[key] = run_id
        self._current.move_to_end(key)
        while len(self._current) > self.capacity:
            self._current.popitem(last=False)

    def forget_current(self, domain_id: str, workflow_id: str) -> None:
        self._current.pop((domain_id, workflow_id), None)

    def idle(self, key: RunKey) -> bool:
        """Nobody holds or waits for the run's lock (no transition of it is in flight)."""
        return key not in self._locks

    def locked(self, key: RunKey) -> _Locked:
        """`async with cache.locked(key):` holds the run's lock (one writer per run)."""
        return _Locked(self._locks, key)


class _Locked:
    """The async context manager of ExecutionCache.locked.

    A class rather than @asynccontextmanager: it is entered several times per workflow
    step, and the generator-based helper (a generator, its wrapper object, anext and
    athrow plumbing) cost more than the lock itself."""

    __slots__ = ("_locks", "_key", "_entry")

    def __init__(self, locks: dict[RunKey, _RunLock], key: RunKey) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._key)
        if entry is None:
            entry = self._locks[self._key] = _RunLock()
        entry.users += 1
        if entry.held:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if entry.waiters is None:
                entry.waiters = deque()
            entry.waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    entry.release()  # handed the lock as we were cancelled: pass it on
                self._leave(entry)
                raise
        else:
            entry.held = True
        self._entry = entry

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._entry
        entry.release()
        self._leave(entry)

    def _leave(self, entry: _RunLock) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._locks[self._key]
