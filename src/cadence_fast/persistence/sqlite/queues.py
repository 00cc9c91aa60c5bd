"""History batches and the transfer / timer queues (the outbox) on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

from cadence_fast.persistence.records import HistoryBatch, TimerTask, TransferTask
from cadence_fast.persistence.sqlite.base import INT64, SQLiteBase, token_int


class HistoryAndQueues(SQLiteBase):
    # --- history --------------------------------------------------------------------

    async def read_history(
        self,
        shard_id: int,
        domain_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
        page_size: int,
        next_page_token: bytes | None,
    ) -> tuple[list[HistoryBatch], bytes | None]:
        after = token_int(next_page_token, "history")
        key = (shard_id, domain_id, workflow_id, run_id)
        limit = page_size + 1 if page_size > 0 else -1
        where = "shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?"

        def read(conn: sqlite3.Connection) -> list[Any]:
            lower_params: tuple[Any, ...]
            if after is not None:
                lower_sql, lower_params = "first_event_id > ?", (after,)
            else:
                # Seek to the batch holding min_event_id: the last one starting at or before it.
                lower_sql = (
                    "first_event_id >= COALESCE((SELECT MAX(first_event_id) FROM history_batches "
                    f"WHERE {where} AND first_event_id <= ?), 0)"
                )
                lower_params = (*key, min_event_id)
            return conn.execute(
                f"SELECT first_event_id, last_event_id, data FROM history_batches WHERE {where} AND {lower_sql} "
                "AND last_event_id >= ? AND first_event_id < ? ORDER BY first_event_id LIMIT ?",
                (*key, *lower_params, min_event_id, max_event_id, limit),
            ).fetchall()

        rows = await self._read(read)
        batches = [HistoryBatch(r[0], r[1], r[2]) for r in rows]
        if page_size > 0 and len(batches) > page_size:
            batches = batches[:page_size]
            return batches, INT64.pack(batches[-1].first_event_id)
        return batches, None

    # --- queues (the outbox) ----------------------------------------------------------

    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT task_id, task_type, domain_id, workflow_id, run_id, data, visibility_time FROM transfer_tasks "
                "WHERE shard_id = ? AND task_id > ? AND task_id <= ? ORDER BY task_id LIMIT ?",
                (shard_id, min_task_id, max_task_id, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TransferTask(*r) for r in rows]

    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT visibility_time, task_id, task_type, domain_id, workflow_id, run_id, data FROM timer_tasks "
                "WHERE shard_id = ? AND (visibility_time, task_id) >= (?, ?) AND visibility_time < ? "
                "ORDER BY visibility_time, task_id LIMIT ?",
                (shard_id, min_time, min_task_id, max_time, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TimerTask(*r) for r in rows]

    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM transfer_tasks WHERE shard_id = ? AND task_id = ?", (shard_id, task_id)
                )
                and None
            )
        )

    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM transfer_tasks WHERE shard_id = ? AND task_id <= ?",
                    (shard_id, up_to_task_id),
                )
                and None
            )
        )

    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM timer_tasks WHERE shard_id = ? AND visibility_time = ? AND task_id = ?",
                    (shard_id, visibility_time, task_id),
                )
                and None
            )
        )

    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM timer_tasks WHERE shard_id = ? AND visibility_time < ?",
                    (shard_id, before_time),
                )
                and None
            )
        )
