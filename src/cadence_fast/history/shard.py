"""A history shard: ownership (range_id), task-id blocks, and the group committer.

Every write of a shard carries its range_id (DESIGN §4). Task ids come from the block
[range_id << 20, (range_id + 1) << 20); an exhausted block is renewed by bumping the
range. Concurrent transitions of the shard are grouped into one store.commit call
(one transaction, one fsync); each op keeps its own condition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from cadence_fast.loops import LoopRef
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import CreateWorkflow, ShardRecord, UpdateWorkflow
from cadence_fast.persistence.store import Store

log = logging.getLogger(__name__)

RANGE_SIZE_BITS = 20
_MAX_BATCH = 256  # ops per transaction
_MAX_INFLIGHT = 4  # transactions of one shard committing at once (the store may merge them)

Op = CreateWorkflow | UpdateWorkflow


def _transfers_of(op: Op) -> list[Any]:
    new_run = getattr(op, "new_run", None)
    return [*op.transfer_tasks, *new_run.transfer_tasks] if new_run is not None else op.transfer_tasks


def _timers_of(op: Op) -> list[Any]:
    new_run = getattr(op, "new_run", None)
    return [*op.timer_tasks, *new_run.timer_tasks] if new_run is not None else op.timer_tasks


def _tasks_of(op: Op) -> list[Any]:
    return [*_transfers_of(op), *_timers_of(op)]


class Shard:
    def __init__(self, store: Store, shard_id: int, on_committed: Callable[[Shard, Op], None]) -> None:
        self.store = store
        self.shard_id = shard_id
        self.range_id = 0
        self.record: ShardRecord | None = None
        self._next_task_id = 0
        self._max_task_id = 0
        self._pending: list[tuple[Op, asyncio.Future[None]]] = []
        #: The shard's event loop (cadence_fast.loops: no getpid() per lookup); its queues use it too.
        self.loop_ref = LoopRef()
        self._inflight: dict[int, list[Op]] = {}  # batch number -> ops being committed
        self._batch_seq = 0
        self._renewing = False
        self._idle = asyncio.Event()
        self._on_committed = on_committed
        self._update_lock = asyncio.Lock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    # --- ownership --------------------------------------------------------------------

    async def acquire(self) -> ShardRecord:
        """Take the shard: bump its range_id (fences any previous owner)."""
        async with self._update_lock:
            record = await self.store.get_or_create_shard(self.shard_id)
            previous = record.range_id
            record.range_id = previous + 1
            record.owner = self.owner
            await self.store.update_shard(record, previous)
            self.record = record
            self.range_id = record.range_id
            self._next_task_id = record.range_id << RANGE_SIZE_BITS
            self._max_task_id = (record.range_id + 1) << RANGE_SIZE_BITS
            return record

    async def persist_ack_levels(self, transfer_ack: int, timer_ack: int) -> None:
        async with self._update_lock:
            assert self.record is not None
            if self.record.transfer_ack_level == transfer_ack and self.record.timer_ack_level == timer_ack:
                return
            self.record.transfer_ack_level = transfer_ack
            self.record.timer_ack_level = timer_ack
            await self.store.update_shard(self.record, self.range_id)

    # --- group commit -----------------------------------------------------------------

    async def commit(self, op: Op) -> None:
        """Write one op in the next group transaction; raises its store error."""
        fut: asyncio.Future[None] = self.loop_ref.get().create_future()
        self._pending.append((op, fut))
        self._kick()
        # No shield: the op is already pending and is committed whether or not this
        # caller stays; cancelling the caller only cancels its own future, which
        # _commit_batch skips (fut.done()). shield cost an extra future and a callback
        # pair on every transition (perf-findings F2).
        await fut

    def min_uncommitted_timer(self) -> int | None:
        """The earliest timer task time among ops not yet committed (for the timer ack level)."""
        best: int | None = None
        ops = [op for batch in self._inflight.values() for op in batch] + [op for op, _ in self._pending]
        for op in ops:
            for t in _timers_of(op):
                if best is None or t.visibility_time < best:
                    best = t.visibility_time
        return best

    def min_inflight_transfer_id(self) -> int | None:
        """The lowest transfer task id of a batch still committing (for the transfer ack level).

        Batches may commit out of order: no ack level may pass a task of a batch in flight."""
        best: int | None = None
        for batch in self._inflight.values():
            for op in batch:
                for t in _transfers_of(op):
                    if best is None or t.task_id < best:
                        best = t.task_id
        return best

    def _kick(self) -> None:
        """Start commits of pending ops, up to _MAX_INFLIGHT transactions at once."""
        while self._pending and len(self._inflight) < _MAX_INFLIGHT and not self._renewing:
            batch = self._pending[:_MAX_BATCH]
            ops = [op for op, _ in batch]
            # Most ops have no new run: their own task lists, without building _tasks_of's copy.
            tasks = [
                t
                for op in ops
                for t in (op.transfer_tasks + op.timer_tasks if getattr(op, "new_run", None) is None
                          else _tasks_of(op))
            ]  # fmt: skip
            if self._next_task_id + len(tasks) >= self._max_task_id:
                # The id block is exhausted: renew the range once nothing is in flight
                # (a renewal fences every commit still carrying the old range_id).
                self._renewing = True
                asyncio.ensure_future(self._renew_then_kick())
                return
            del self._pending[:_MAX_BATCH]
            next_id = self._next_task_id
            for t in tasks:
                t.task_id = next_id
                next_id += 1
            self._next_task_id = next_id
            self._batch_seq += 1
            self._inflight[self._batch_seq] = ops
            self.loop_ref.get().create_task(self._commit_batch(self._batch_seq, batch))

    async def _commit_batch(self, seq: int, batch: list[tuple[Op, asyncio.Future[None]]]) -> None:
        ops = [op for op, _ in batch]
        try:
            results = await self.store.commit(self.shard_id, self.range_id, ops)
        except BaseException as e:  # noqa: BLE001 - every waiter gets the failure
            del self._inflight[seq]
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            self._after_batch()
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        del self._inflight[seq]
        for (op, fut), result in zip(batch, results, strict=True):
            if result is None:
                try:
                    self._on_committed(self, op)
                except Exception:  # noqa: BLE001
                    log.exception("shard %s: post-commit notification failed", self.shard_id)
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                fut.set_exception(result)
        self._after_batch()

    def _after_batch(self) -> None:
        if not self._inflight:
            self._idle.set()
        self._kick()

    async def _renew_then_kick(self) -> None:
        try:
            while self._inflight:
                self._idle.clear()
                await self._idle.wait()
            await self._renew_range()
        except BaseException as e:  # noqa: BLE001
            pending, self._pending = self._pending, []
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._renewing = False
            self._kick()

    async def _renew_range(self) -> None:
        async with self._update_lock:
            assert self.record is not None
            previous = self.range_id
            self.record.range_id = previous + 1
            try:
                await self.store.update_shard(self.record, previous)
            except store_errors.StoreError:
                self.record.range_id = previous
                raise
            self.range_id = self.record.range_id
            self._next_task_id = self.range_id << RANGE_SIZE_BITS
            self._max_task_id = (self.range_id + 1) << RANGE_SIZE_BITS
