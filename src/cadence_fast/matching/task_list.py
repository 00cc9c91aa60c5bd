"""One loaded task list: its dispatcher (waiting polls, ready buffer), its backlog, its pollers.

Go matching's taskListManager. Every task a poll returns has `owner` set to the manager
that handed it out, so ack/requeue find their way back even after the list reloaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from cadence_fast import errors
from cadence_fast._core import dispatcher as _dispatcher
from cadence_fast.loops import LoopRef
from cadence_fast.matching.backlog import Backlog, TaskListLost
from cadence_fast.matching.task import KIND_STICKY, MatchTask, decode
from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.records import TaskListType
from cadence_fast.persistence.store import Store

log = logging.getLogger("cadence_fast.matching")

T = TypeVar("T")

#: Tasks kept in memory ahead of pollers (Go: getTasksBatchSize 1000).
BUFFER_SIZE = 1000
#: The reader refills when the buffer drops below this.
REFILL_BELOW = BUFFER_SIZE // 2
#: A poller not seen for this long is no longer listed (Go: pollerHistoryTTL 5 m).
POLLER_TTL_NS = 5 * 60 * 1_000_000_000
#: A sticky list whose worker has not polled for this long is "unavailable" (Go: 10 s).
STICKY_POLLER_WINDOW_NS = 10 * 1_000_000_000
#: How long a re-queued query task waits for a poller when it carries no expiry.
QUERY_REQUEUE_SECONDS = 10.0
#: Rate reported for pollers that set no max_tasks_per_second (Go: _defaultTaskDispatchRPS).
DEFAULT_RATE_PER_SECOND = 100000.0


class _Lost:
    """Returned by `poll` instead of None when the list was unloaded under the poll."""


LOST = _Lost()


@dataclass(slots=True)
class PollerInfo:
    identity: str
    last_access_time: int  # ns since epoch
    rate_per_second: float


@dataclass(slots=True)
class TaskListDescription:
    domain_id: str
    name: str
    task_type: int
    kind: int
    pollers: list[PollerInfo]
    backlog_count: int
    ack_level: int
    read_level: int
    range_id: int
    task_id_block: tuple[int, int]


def _expired(task: MatchTask, now_ns: int) -> bool:
    return task.expiry_time != 0 and task.expiry_time <= now_ns


def _resolve(fut: asyncio.Future[T], value: T) -> None:
    if not fut.done():
        fut.set_result(value)


class TaskListManager:
    def __init__(
        self,
        store: Store,
        domain_id: str,
        name: str,
        task_type: int,
        kind: int,
        resubmit: Callable[[MatchTask], Awaitable[None]],
        sync_match_wait: float = 0.0,
    ) -> None:
        self.domain_id = domain_id
        self.sync_match_wait = sync_match_wait
        self._loop_ref = LoopRef()  # cadence_fast.loops: the loop without a getpid() per lookup
        self.name = name
        self.task_type = task_type
        self.backlog = Backlog(store, domain_id, name, task_type, kind)
        self.backlog.on_written = self._on_written
        self.dispatcher = _dispatcher.Dispatcher()
        # How a sync-matched task that comes back (cancelled poll, requeue) re-enters
        # matching when no poller waits: the engine's add_task, so it lands in whatever
        # manager owns the list by then.
        self._resubmit = resubmit
        self._pollers: dict[str, PollerInfo] = {}
        self._read_wanted = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.last_active = time.monotonic()
        self.closed = False

    @property
    def kind(self) -> int:
        return self.backlog.kind

    @property
    def lost(self) -> bool:
        return self.backlog.lost

    async def start(self) -> None:
        await self.backlog.lease()
        self._reader = asyncio.create_task(self._read_loop())
        self._read_wanted.set()

    async def close(self, flush: bool = True) -> None:
        """Unload: waiting polls get None (or LOST), buffered rows stay in the store."""
        if self.closed:
            return
        self.closed = True
        self.dispatcher.close()
        self.dispatcher.drain_ready()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._background):
            # Resubmits persist sync-matched tasks nobody took; let them land.
            await asyncio.gather(task, return_exceptions=True)
        if not self.lost:
            await self.backlog.wait_writes()
            if flush:
                try:
                    await self.backlog.flush()
                except (TaskListLost, StoreError) as e:
                    log.warning("task list %s: final ack flush failed: %s", self.name, e)

    # --- adding tasks -------------------------------------------------------------------

    async def add_task(self, task: MatchTask) -> None:
        """Sync match, else persist (TaskListLost if the lease moved; the engine reloads)."""
        self.last_active = time.monotonic()
        if _expired(task, time.time_ns()):
            self._finish_unpersisted(task)
            return
        task.owner = self
        task.task_id = 0
        if self.dispatcher.offer(task):
            return
        if (
            self.kind == KIND_STICKY
            and self.task_type == TaskListType.DECISION
            and not self.has_poller_since(time.time_ns() - STICKY_POLLER_WINDOW_NS)
        ):
            # History falls back to the workflow's normal task list (Go: StickyWorkerUnavailable).
            raise errors.StickyWorkerUnavailableError(f"sticky task list {self.name!r} has no live poller")
        if self.closed:
            raise TaskListLost(f"task list {self.name!r} is unloading")
        if self.sync_match_wait > 0:
            if await self._wait_for_poller(task):
                return
            if self.closed or self.dispatcher.is_closed():
                # Unloading while we waited: the engine retries on the list's next manager.
                raise TaskListLost(f"task list {self.name!r} is unloading")
        await self.backlog.persist(task)

    async def _wait_for_poller(self, task: MatchTask) -> bool:
        """Give a poller that is about to come back a short chance before writing the task.

        Workers poll again right after each task, so under load a poller is usually only
        moments away; a write (an fsync) for every such task is what this avoids (Go
        matching waits likewise). Only when nothing is queued, so order is kept.
        """
        backlog = self.backlog
        if self.dispatcher.ready_count() or not backlog.caught_up() or backlog.has_pending_writes():
            return False
        loop = self._loop_ref.get()
        fut: asyncio.Future[bool] = loop.create_future()
        self.dispatcher.offer_wait(task, fut)
        if not fut.done():
            handle = loop.call_later(self.sync_match_wait, _resolve, fut, False)
            try:
                await fut
            finally:
                handle.cancel()
                _resolve(fut, False)  # withdrawn: a later poll must not take it
        return bool(fut.result())

    def _on_written(self, tasks: list[MatchTask]) -> None:
        if self.closed:
            self.backlog.note_written(tasks)
            return
        if self.backlog.caught_up() and self.dispatcher.ready_count() + len(tasks) <= BUFFER_SIZE:
            self.backlog.take_written(tasks)
            for task in tasks:
                task.owner = self
                self.dispatcher.put(task)
        else:
            self.backlog.note_written(tasks)
            self._read_wanted.set()

    async def offer_query(self, task: MatchTask, timeout: float) -> bool:  # noqa: ASYNC109
        """Hand a query task to a poller within `timeout` seconds; never persisted."""
        loop = asyncio.get_running_loop()
        task.owner = self
        task.task_id = 0
        fut: asyncio.Future[bool] = loop.create_future()
        self.dispatcher.offer_wait(task, fut)
        if fut.done():
            return bool(fut.result())
        handle = loop.call_later(max(0.0, timeout), _resolve, fut, False)
        try:
            return bool(await fut)
        finally:
            handle.cancel()
            # A cancelled sender must not leave its offer for a poller to pick up.
            _resolve(fut, False)

    # --- polling ------------------------------------------------------------------------

    def record_poller(self, identity: str, rate_per_second: float) -> None:
        info = self._pollers.get(identity)
        if info is None:
            self._pollers[identity] = PollerInfo(
                identity, time.time_ns(), rate_per_second or DEFAULT_RATE_PER_SECOND
            )
        else:
            info.last_access_time = time.time_ns()
            info.rate_per_second = rate_per_second or DEFAULT_RATE_PER_SECOND

    def has_poller_since(self, since_ns: int) -> bool:
        if self.dispatcher.poller_count() > 0:
            return True
        return any(p.last_access_time >= since_ns for p in self._pollers.values())

    async def poll(
        self, identity: str, deadline: float, rate_per_second: float = 0.0
    ) -> MatchTask | _Lost | None:
        """Wait until `deadline` (loop time) for a task. None: timed out or stopping; LOST: reload."""
        loop = self._loop_ref.get()
        self.last_active = time.monotonic()
        self.record_poller(identity, rate_per_second)
        try:
            while True:
                task = self._take()
                if task is not None:
                    return task
                if self.closed or self.dispatcher.is_closed():
                    return LOST if self.lost else None
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                fut: asyncio.Future[MatchTask | None] = loop.create_future()
                self.dispatcher.wait(fut)
                handle = loop.call_later(remaining, _resolve, fut, None)
                try:
                    got = await fut
                except asyncio.CancelledError:
                    # Cancelled after a task was handed over (the task was resolved but
                    # the poll had not resumed yet): the task goes back to the list.
                    if fut.done() and not fut.cancelled() and fut.result() is not None:
                        self.requeue(fut.result())  # type: ignore[arg-type]
                    raise
                finally:
                    handle.cancel()
                if got is None:
                    if self.dispatcher.is_closed():
                        return LOST if self.lost else None
                    if loop.time() >= deadline:
                        return None
                    continue
                if _expired(got, time.time_ns()):
                    self._drop(got)
                    continue
                return got
        finally:
            self.record_poller(identity, rate_per_second)

    def _take(self) -> MatchTask | None:
        """A buffered task (or pending query) for a poll that need not wait."""
        dispatcher = self.dispatcher
        while True:
            task = dispatcher.take()
            if task is None:
                return None
            if dispatcher.ready_count() < REFILL_BELOW and not self.backlog.caught_up():
                self._read_wanted.set()
            if _expired(task, time.time_ns()):  # type: ignore[arg-type]
                self._drop(task)  # type: ignore[arg-type]
                continue
            return task  # type: ignore[return-value]

    # --- after a poll -------------------------------------------------------------------

    def ack(self, task: MatchTask) -> None:
        if task.query is not None:
            return
        if task.task_id == 0:
            self._finish_unpersisted(task)
        elif not self.closed:
            self.backlog.ack(task.task_id)
        # A closed (unloaded) list's rows are re-read by whoever loads it next: a
        # duplicate, which history rejects as stale.

    def requeue(self, task: MatchTask) -> None:
        """Deliver again: back to a waiting poller, the buffer front, or the backlog."""
        if task.query is not None:
            if self.closed:
                return
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[bool] = loop.create_future()
            self.dispatcher.offer_wait(task, fut)
            if not fut.done():
                wait = QUERY_REQUEUE_SECONDS
                if task.expiry_time:
                    wait = max(0.0, (task.expiry_time - time.time_ns()) / 1e9)
                loop.call_later(wait, _resolve, fut, False)
            return
        if task.task_id == 0:
            if not self.closed and self.dispatcher.offer(task):
                return
            # Nobody waits: persist it (through the engine, in case this list reloads).
            bg = asyncio.create_task(self._resubmit_safely(task))
            self._background.add(bg)
            bg.add_done_callback(self._background.discard)
            return
        if not self.closed:
            self.dispatcher.put_front(task)

    async def _resubmit_safely(self, task: MatchTask) -> None:
        try:
            await self._resubmit(task)
        except Exception as e:  # noqa: BLE001 - the transfer task stays in the outbox
            log.warning("task list %s: could not re-queue task of %s: %s", self.name, task.workflow_id, e)

    def _drop(self, task: MatchTask) -> None:
        """An expired task: done without delivery (history's timeout covers it)."""
        if task.query is not None:
            return
        if task.task_id == 0:
            self._finish_unpersisted(task)
        elif not self.closed:
            self.backlog.ack(task.task_id)

    @staticmethod
    def _finish_unpersisted(task: MatchTask) -> None:
        done, task.on_done = task.on_done, None
        if done is not None:
            try:
                done()
            except Exception:  # noqa: BLE001 - a caller's callback must not break matching
                log.exception("on_done callback failed for %s", task.workflow_id)

    # --- the reader -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Pump the persisted backlog into the buffer, in id order, while there is room."""
        backlog, dispatcher = self.backlog, self.dispatcher
        while not self.closed:
            await self._read_wanted.wait()
            self._read_wanted.clear()
            while not self.closed and not backlog.caught_up():
                room = BUFFER_SIZE - dispatcher.ready_count()
                if room <= 0:
                    break
                try:
                    rows = await backlog.read(room)
                except StoreError as e:
                    log.warning("task list %s: backlog read failed, retrying: %s", self.name, e)
                    await asyncio.sleep(1.0)
                    continue
                now = time.time_ns()
                for row in rows:
                    try:
                        task = decode(row, self.domain_id, self.name, self.task_type, self.kind)
                    except (ValueError, TypeError) as e:
                        # An unreadable row would block the list forever: skip it, loudly.
                        log.error(
                            "task list %s: dropping undecodable backlog task %d: %s",
                            self.name,
                            row.task_id,
                            e,
                        )
                        backlog.ack(row.task_id)
                        continue
                    task.owner = self
                    if _expired(task, now):
                        backlog.ack(task.task_id)
                    else:
                        dispatcher.put(task)

    def backlog_hint(self) -> int:
        """Tasks waiting in this list (buffered + still only in the store); cheap, approximate."""
        return self.dispatcher.ready_count() + max(0, self.backlog.max_written - self.backlog.read_level)

    # --- introspection ---------------------------------------------------------------------

    def pollers(self) -> list[PollerInfo]:
        cutoff = time.time_ns() - POLLER_TTL_NS
        for identity in [i for i, p in self._pollers.items() if p.last_access_time < cutoff]:
            del self._pollers[identity]
        return sorted(self._pollers.values(), key=lambda p: p.last_access_time, reverse=True)

    async def describe(self) -> TaskListDescription:
        backlog = self.backlog
        count = await backlog.count() if not self.closed else 0
        return TaskListDescription(
            domain_id=self.domain_id,
            name=self.name,
            task_type=self.task_type,
            kind=self.kind,
            pollers=self.pollers(),
            backlog_count=count,
            ack_level=backlog.ack_level,
            read_level=backlog.read_level,
            range_id=backlog.range_id,
            task_id_block=backlog.task_id_block,
        )

    def is_idle(self, idle_seconds: float) -> bool:
        return (
            time.monotonic() - self.last_active >= idle_seconds
            and self.dispatcher.poller_count() == 0
            and self.dispatcher.ready_count() == 0
            and self.dispatcher.offer_count() == 0
            and self.backlog.outstanding_count() == 0
            and self.backlog.caught_up()
            and not self.backlog.has_pending_writes()
            and not self._background
        )
