"""The outbox processors of one shard: the transfer queue and the timer queue (DESIGN §4).

Tasks are written in the same transaction as the state that caused them. After a
commit the shard notifies these processors in memory; at start they read what the
store holds above the persisted ack levels, so after a restart no pending work is
lost. Execution is at least once: every executor re-checks mutable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from cadence_fast import errors
from cadence_fast.history.shard import Shard
from cadence_fast.persistence.records import TimerTask, TransferTask
from cadence_fast.persistence.store import Store

log = logging.getLogger(__name__)

_READ_PAGE = 1000
_MAX_TASK_ID = (1 << 62) - 1
_TIMER_WINDOW_NS = 60 * 1_000_000_000
_RETRY_SECONDS = (0.05, 0.2, 1.0, 2.0, 5.0)

TransferExecutor = Callable[[TransferTask, Callable[[], None]], Coroutine[Any, Any, None]]
TimerExecutor = Callable[[TimerTask], Coroutine[Any, Any, None]]


def now_ns() -> int:
    return time.time_ns()


# --- executors started inline ----------------------------------------------------------
# Most executions finish without waiting (the run is cached, a poller is waiting), so a
# Task per task (creation, the all-tasks WeakSet, a done callback) is mostly waste
# (perf-findings F4). A queue runs an executor's coroutine inline up to its first wait
# and hands it to a Task only if it does wait, as Python 3.12's eager tasks do.

_FINISHED = object()


def _step(coro: Coroutine[Any, Any, None], exc: BaseException | None = None) -> Any:
    """Resume coro (with exc thrown in, if any) up to its next wait: what it waits on, or _FINISHED."""
    try:
        return coro.send(None) if exc is None else coro.throw(exc)
    except StopIteration:
        return _FINISHED


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that _step left waiting on `waiting_on` to its end, as a Task would."""
    while waiting_on is not _FINISHED:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                # As a Task does on taking a yielded future: the coroutine's own await
                # marked it blocking, and a second await refuses a blocking one.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as e:  # noqa: BLE001 - handed to the coroutine, as a Task does
            waiting_on = _step(coro, e)
        else:
            waiting_on = _step(coro)


class TransferQueue:
    """Dispatches transfer tasks; an executor calls `done` when the task needs the outbox no more."""

    def __init__(self, store: Store, shard: Shard, execute: TransferExecutor) -> None:
        self.store = store
        self.shard = shard
        self.execute = execute
        self.ack_level = 0
        self.max_seen = 0
        self.outstanding: dict[int, TransferTask] = {}
        self._ready: deque[TransferTask] = deque()
        self._drain_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # retries
        self._stopped = False

    async def start(self, ack_level: int) -> None:
        self.ack_level = self.max_seen = ack_level
        last = ack_level
        while True:
            page = await self.store.get_transfer_tasks(self.shard.shard_id, last, _MAX_TASK_ID, _READ_PAGE)
            self.notify(page)
            if len(page) < _READ_PAGE:
                break
            last = page[-1].task_id

    def notify(self, tasks: list[TransferTask]) -> None:
        for t in tasks:
            if t.task_id <= self.ack_level or t.task_id in self.outstanding:
                continue
            self.outstanding[t.task_id] = t
            if t.task_id > self.max_seen:
                self.max_seen = t.task_id
            self._ready.append(t)
        if self._ready and not self._drain_scheduled:
            # Not inline: notify runs inside the shard's commit, before its waiters are
            # woken. Two loop turns later, not one: the transition that made these tasks
            # still holds its run's lock until its waiter runs (next turn), and an executor
            # started before that would only wait for the lock (and need a Task to do so).
            self._drain_scheduled = True
            loop = self.shard.loop_ref.get()
            loop.call_soon(loop.call_soon, self._drain)

    def _drain(self) -> None:
        """Start the ready tasks: no Task per transfer task (perf-findings F4).

        Each executor runs inline up to its first wait. Most finish without one (a sync
        match hands the task to a waiting poller), so a commit's tasks cost one loop
        callback between them; an executor that does wait (a backlog write, a store read)
        goes on in a Task of its own, so it holds up no other task."""
        self._drain_scheduled = False
        ready = self._ready
        while ready and not self._stopped:
            t = ready.popleft()
            if t.task_id in self.outstanding:
                self._start(t)

    def _start(self, t: TransferTask) -> None:
        coro = self.execute(t, functools.partial(self.complete, t.task_id))
        try:
            waiting_on = _step(coro)
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - retried: the outbox must not lose it
            self._log_failure(t, e)
            self._spawn(self._retry(t))
            return
        if waiting_on is not _FINISHED:
            self._spawn(self._resume(t, coro, waiting_on))

    async def _resume(self, t: TransferTask, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        try:
            await _finish(coro, waiting_on)
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - retried: the outbox must not lose it
            self._log_failure(t, e)
        await self._retry(t)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.shard.loop_ref.get().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _log_failure(self, t: TransferTask, e: BaseException) -> None:
        if self._stopped or isinstance(e, errors.UnavailableError):
            # matching is stopping or busy: expected, and the task stays in the outbox
            log.debug("shard %s: transfer task %s: %s; retrying", self.shard.shard_id, t.task_id, e)
        else:
            log.warning("shard %s: transfer task %s failed; retrying", self.shard.shard_id, t.task_id,
                        exc_info=e)  # fmt: skip

    async def _retry(self, t: TransferTask) -> None:
        attempt = 0
        while not self._stopped:
            await asyncio.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
            attempt += 1
            try:
                await self.execute(t, functools.partial(self.complete, t.task_id))
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - retried: the outbox must not lose it
                self._log_failure(t, e)

    def complete(self, task_id: int) -> None:
        self.outstanding.pop(task_id, None)

    def current_ack_level(self) -> int:
        level = min(self.outstanding) - 1 if self.outstanding else self.max_seen
        inflight = self.shard.min_inflight_transfer_id()
        if inflight is not None:
            level = min(level, inflight - 1)
        return max(self.ack_level, level)

    async def stop(self) -> None:
        self._stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class TimerQueue:
    """Fires timer tasks at their visibility time: an in-memory heap over a read window."""

    def __init__(self, store: Store, shard: Shard, execute: TimerExecutor) -> None:
        self.store = store
        self.shard = shard
        self.execute = execute
        self.ack_level = 0
        self.window_end = 0  # tasks with visibility_time < window_end are in memory
        self._heap: list[tuple[int, int, TimerTask]] = []
        self._known: set[int] = set()  # task ids in the heap or executing
        self._executing: dict[int, int] = {}  # task id -> visibility time
        # The loop sleeps on _waiter until _wake_at (ns); 0 while it is not sleeping.
        self._waiter: asyncio.Future[None] | None = None
        self._wake_at = 0
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self, ack_level: int) -> None:
        self.ack_level = ack_level
        await self._read_window(ack_level, 0)
        self._loop_task = asyncio.ensure_future(self._loop())

    async def _read_window(self, min_time: int, min_task_id: int) -> None:
        end = now_ns() + _TIMER_WINDOW_NS
        self.window_end = end  # before reading: commits from now on are notified in memory
        while True:
            page = await self.store.get_timer_tasks(
                self.shard.shard_id, min_time, min_task_id, end, _READ_PAGE
            )
            for t in page:
                self._push(t)
            if len(page) < _READ_PAGE:
                break
            min_time, min_task_id = page[-1].visibility_time, page[-1].task_id + 1
        self._wake_up()

    def _wake_up(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, t: TimerTask) -> None:
        if t.task_id in self._known:
            return
        self._known.add(t.task_id)
        heapq.heappush(self._heap, (t.visibility_time, t.task_id, t))

    def notify(self, tasks: list[TimerTask]) -> None:
        # Wake the loop only for a timer due before the time it sleeps until: most
        # timers (decision and activity timeouts) are due later and just join the heap
        # (perf-findings F3). A loop that is not sleeping looks at the heap before it does.
        earliest = self._wake_at
        for t in tasks:
            if t.visibility_time < self.window_end:
                self._push(t)
                if t.visibility_time < earliest:
                    earliest = 0
        if earliest == 0 and self._wake_at:
            self._wake_up()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_read = self.window_end - _TIMER_WINDOW_NS // 2
        while not self._stopped:
            now = now_ns()
            while self._heap and self._heap[0][0] <= now:
                _, task_id, t = heapq.heappop(self._heap)
                self._executing[task_id] = t.visibility_time
                self._fire(t)
            if now >= next_read:
                try:
                    await self._read_window(self.window_end, 0)
                except Exception:  # noqa: BLE001
                    log.warning("shard %s: timer read failed", self.shard.shard_id, exc_info=True)
                next_read = self.window_end - _TIMER_WINDOW_NS // 2
                continue
            wake_at = next_read
            if self._heap and self._heap[0][0] < wake_at:
                wake_at = self._heap[0][0]
            # A future and a timer handle, not wait_for (which makes a Task per sleep).
            waiter = self._waiter = loop.create_future()
            self._wake_at = wake_at
            timer = loop.call_later(max(0.0, (wake_at - now_ns()) / 1e9), self._wake_up)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
                self._wake_at = 0

    def _fire(self, t: TimerTask) -> None:
        """Run the executor inline up to its first wait (no Task unless it waits: see _step)."""
        coro = self.execute(t)
        try:
            waiting_on = _step(coro)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - retried
            self._log_failure(t)
            self._spawn(self._complete(t))
            return
        if waiting_on is _FINISHED:
            self._done(t)
        else:
            self._spawn(self._complete(t, coro, waiting_on))

    async def _complete(
        self, t: TimerTask, coro: Coroutine[Any, Any, None] | None = None, waiting_on: Any = None
    ) -> None:
        """Finish an execution that waited (coro), then retry the task until it succeeds."""
        attempt = 0
        try:
            if coro is not None:
                try:
                    await _finish(coro, waiting_on)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001
                    self._log_failure(t)
            while not self._stopped:
                await asyncio.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
                attempt += 1
                try:
                    await self.execute(t)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001
                    self._log_failure(t)
        finally:
            if not self._stopped:
                self._done(t)

    def _done(self, t: TimerTask) -> None:
        self._executing.pop(t.task_id, None)
        self._known.discard(t.task_id)

    def _log_failure(self, t: TimerTask) -> None:
        log.warning("shard %s: timer task %s failed; retrying", self.shard.shard_id, t.task_id, exc_info=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.shard.loop_ref.get().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def current_ack_level(self) -> int:
        """Every timer task before this time is done (or will be re-read after a restart)."""
        level = now_ns()
        if self._heap and self._heap[0][0] < level:
            level = self._heap[0][0]
        if self._executing:
            level = min(level, min(self._executing.values()))
        pending = self.shard.min_uncommitted_timer()
        if pending is not None and pending < level:
            level = pending
        return max(self.ack_level, level)

    async def stop(self) -> None:
        self._stopped = True
        tasks = list(self._tasks)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
