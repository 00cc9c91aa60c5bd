"""The persisted backlog of one task list: its lease, task ids, group-committed writes,
the read level, and the ack level that lets acknowledged rows be deleted.

Go matching's taskWriter + taskReader + ackManager, for one process. Levels, all task ids:

    ack_level <= read_level <= max_written
    - every id <= ack_level is done (acked, expired, or a gap): rows below it may go;
    - ids in (ack_level, read_level] were loaded into memory (buffered or handed out);
    - ids in (read_level, max_written] are committed but still only in the store.

Only this process writes the list while it holds the lease (`range_id`). Task ids come
from the lease's block ((range_id-1)*RANGE_SIZE, range_id*RANGE_SIZE]; a new block needs
a new lease. Any write the store refuses because range_id moved means another process
took the list: `TaskListLost`, and the manager unloads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from cadence_fast.loops import LoopRef
from cadence_fast.matching.task import MatchTask, encode
from cadence_fast.persistence.errors import ConditionFailed
from cadence_fast.persistence.records import TaskListRecord, TaskListTask
from cadence_fast.persistence.store import Store

log = logging.getLogger("cadence_fast.matching")

#: Task ids per lease (Go: rangeSize 100000).
RANGE_SIZE = 100_000
#: Most tasks written in one create_tasks call (Go: maxTaskBatchSize 100).
MAX_WRITE_BATCH = 100


class TaskListLost(Exception):
    """The task list's range_id moved under us: another owner leased it."""


class Backlog:
    def __init__(self, store: Store, domain_id: str, name: str, task_type: int, kind: int) -> None:
        self.store = store
        self.domain_id = domain_id
        self.name = name
        self._loop_ref = LoopRef()  # cadence_fast.loops: the loop without a getpid() per lookup
        self.task_type = task_type
        self.kind = kind
        self.range_id = 0
        self.ack_level = 0
        self.persisted_ack_level = 0
        self.read_level = 0
        self.max_written = 0
        self._next_id = 0
        self._block_end = 0
        # Ids loaded into memory and not yet acked, in id order; acks may come in any order.
        self._outstanding: deque[int] = deque()
        self._acked: set[int] = set()
        # Group commit: add_task callers queue here; one writer task drains the queue.
        self._pending: list[tuple[MatchTask, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        #: Called by the writer, in id order, right after a batch committed (see TaskListManager).
        self.on_written: Callable[[list[MatchTask]], None] = lambda tasks: None
        self.lost = False

    # --- lease ------------------------------------------------------------------------

    async def lease(self) -> None:
        """Take the list (first load): the new range_id fences every earlier owner."""
        record = await self.store.lease_task_list(self.domain_id, self.name, self.task_type, self.kind)
        self.range_id = record.range_id
        self.ack_level = self.persisted_ack_level = record.ack_level
        self.read_level = record.ack_level
        if record.kind:
            self.kind = record.kind
        self._take_block()
        # Rows of earlier leases all have ids below this lease's block.
        self.max_written = max(self.ack_level, self._next_id - 1)

    def _take_block(self) -> None:
        self._next_id = (self.range_id - 1) * RANGE_SIZE + 1
        self._block_end = self.range_id * RANGE_SIZE

    async def _renew(self) -> None:
        """The id block is used up: lease the next one. Anyone else's bump in between means lost."""
        record = await self.store.lease_task_list(self.domain_id, self.name, self.task_type, self.kind)
        if record.range_id != self.range_id + 1:
            self._mark_lost()
        self.range_id = record.range_id
        self._take_block()

    def _mark_lost(self) -> None:
        self.lost = True
        raise TaskListLost(f"task list {self.name!r} (type {self.task_type}) was leased by another owner")

    @property
    def task_id_block(self) -> tuple[int, int]:
        return (self.range_id - 1) * RANGE_SIZE + 1, self._block_end

    # --- writes -----------------------------------------------------------------------

    async def persist(self, task: MatchTask) -> None:
        """Append `task` to the backlog; returns once the row is durable (TaskListLost if fenced)."""
        if self.lost:
            raise TaskListLost(f"task list {self.name!r} was leased by another owner")
        fut: asyncio.Future[None] = self._loop_ref.get().create_future()
        self._pending.append((task, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        # Shield: a cancelled add_task must not cancel a write that others share.
        await asyncio.shield(fut)

    def has_pending_writes(self) -> bool:
        return bool(self._pending) or (self._writer is not None and not self._writer.done())

    async def wait_writes(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _write_loop(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_WRITE_BATCH]
            del self._pending[:MAX_WRITE_BATCH]
            try:
                await self._write(batch)
            except BaseException as e:  # noqa: BLE001 - every waiter learns the outcome
                err = e if isinstance(e, Exception) else TaskListLost("task list unloading")
                for _task, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                        fut.exception()  # retrieved: an abandoned waiter must not log it
                if self.lost:
                    for _task, fut in self._pending:
                        if not fut.done():
                            fut.set_exception(TaskListLost(str(err)))
                            fut.exception()
                    self._pending.clear()
                if not isinstance(e, Exception):
                    raise
                continue
            for _task, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def _write(self, batch: list[tuple[MatchTask, asyncio.Future[None]]]) -> None:
        if self._next_id + len(batch) - 1 > self._block_end:
            await self._renew()
        first = self._next_id
        self._next_id += len(batch)
        rows = []
        for i, (task, _fut) in enumerate(batch):
            rows.append(TaskListTask(first + i, encode(task), task.created_time, task.expiry_time))
        try:
            await self.store.create_tasks(self.domain_id, self.name, self.task_type, self.range_id, rows)
        except ConditionFailed:
            self._mark_lost()
        tasks = []
        for i, (task, _fut) in enumerate(batch):
            task.task_id = first + i
            tasks.append(task)
        # Durable now: the transfer task that produced each one is no longer needed.
        for task in tasks:
            done, task.on_done = task.on_done, None
            if done is not None:
                try:
                    done()
                except Exception:  # noqa: BLE001 - a caller's callback must not break the list
                    log.exception("on_done callback failed for task %s", task.task_id)
        self.on_written(tasks)

    # --- reads ------------------------------------------------------------------------

    def caught_up(self) -> bool:
        return self.read_level >= self.max_written

    def take_written(self, tasks: list[MatchTask]) -> None:
        """Tasks just written go straight to memory (the reader was caught up)."""
        for task in tasks:
            self._outstanding.append(task.task_id)
        self.read_level = self.max_written = tasks[-1].task_id

    def note_written(self, tasks: list[MatchTask]) -> None:
        """Tasks just written stay in the store for the reader (memory is full or behind)."""
        self.max_written = tasks[-1].task_id

    async def read(self, limit: int) -> list[TaskListTask]:
        """The next rows after read_level, in order; they count as loaded (outstanding)."""
        upper = self.max_written
        rows = await self.store.get_tasks(
            self.domain_id, self.name, self.task_type, self.read_level, upper, limit
        )
        for row in rows:
            self._outstanding.append(row.task_id)
        self.read_level = upper if len(rows) < limit else rows[-1].task_id
        return rows

    # --- acks -------------------------------------------------------------------------

    def ack(self, task_id: int) -> None:
        if task_id <= self.ack_level:
            return  # acked before (a second ack, or an expired row dropped twice)
        self._acked.add(task_id)
        outstanding, acked = self._outstanding, self._acked
        while outstanding and outstanding[0] in acked:
            acked.discard(outstanding[0])
            self.ack_level = outstanding.popleft()
        if not outstanding and self.read_level > self.ack_level:
            # Gaps (ids of failed writes) past the last ack: nothing there to wait for.
            self.ack_level = self.read_level

    def outstanding_count(self) -> int:
        return len(self._outstanding) - len(self._acked)

    async def flush(self) -> None:
        """Persist the ack level and delete the rows below it (Go: every minute; here, often)."""
        level = self.ack_level
        if level <= self.persisted_ack_level or self.lost:
            return
        record = TaskListRecord(
            self.domain_id,
            self.name,
            self.task_type,
            kind=self.kind,
            range_id=self.range_id,
            ack_level=level,
            updated_at=time.time_ns(),
        )
        try:
            await self.store.update_task_list(record)
        except ConditionFailed:
            self._mark_lost()
        await self.store.complete_tasks_less_than(self.domain_id, self.name, self.task_type, level)
        # Only now: if the delete failed, the next flush writes the level again and retries it.
        self.persisted_ack_level = level

    async def count(self) -> int:
        """Backlog size: rows not yet acked (persisted past the ack level)."""
        return await self.store.count_tasks(self.domain_id, self.name, self.task_type, self.ack_level)
