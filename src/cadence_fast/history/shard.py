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

from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import CreateWorkflow, ShardRecord, UpdateWorkflow
from cadence_fast.persistence.store import Store

log = logging.getLogger(__name__)

RANGE_SIZE_BITS = 20
_MAX_BATCH = 256  # ops per transaction

Op = CreateWorkflow | UpdateWorkflow


def _tasks_of(op: Op) -> list[Any]:
    out: list[Any] = [*op.transfer_tasks, *op.timer_tasks]
    new_run = getattr(op, "new_run", None)
    if new_run is not None:
        out += [*new_run.transfer_tasks, *new_run.timer_tasks]
    return out


class Shard:
    def __init__(self, store: Store, shard_id: int, on_committed: Callable[[Shard, Op], None]) -> None:
        self.store = store
        self.shard_id = shard_id
        self.range_id = 0
        self.record: ShardRecord | None = None
        self._next_task_id = 0
        self._max_task_id = 0
        self._pending: list[tuple[Op, asyncio.Future[None]]] = []
        self._inflight: list[Op] = []
        self._draining = False
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
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        await asyncio.shield(fut)

    def min_uncommitted_timer(self) -> int | None:
        """The earliest timer task time among ops not yet committed (for the timer ack level)."""
        best: int | None = None
        for op in self._inflight + [op for op, _ in self._pending]:
            for t in op.timer_tasks:
                if best is None or t.visibility_time < best:
                    best = t.visibility_time
            new_run = getattr(op, "new_run", None)
            if new_run is not None:
                for t in new_run.timer_tasks:
                    if best is None or t.visibility_time < best:
                        best = t.visibility_time
        return best

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                ops = [op for op, _ in batch]
                self._inflight = ops
                try:
                    await self._assign_task_ids(ops)
                    results = await self.store.commit(self.shard_id, self.range_id, ops)
                except BaseException as e:  # noqa: BLE001 - every waiter gets the failure
                    self._inflight = []
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    if isinstance(e, asyncio.CancelledError):
                        raise
                    continue
                self._inflight = []
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
        finally:
            self._draining = False

    async def _assign_task_ids(self, ops: list[Op]) -> None:
        tasks = [t for op in ops for t in _tasks_of(op)]
        if self._next_task_id + len(tasks) >= self._max_task_id:
            await self._renew_range()
        for t in tasks:
            t.task_id = self._next_task_id
            self._next_task_id += 1

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
