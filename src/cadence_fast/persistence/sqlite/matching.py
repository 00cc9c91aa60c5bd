"""Task lists (leases by range_id) and their backlog tasks on SQLite."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from cadence_fast.persistence.errors import ConditionFailed
from cadence_fast.persistence.records import TaskListRecord, TaskListTask
from cadence_fast.persistence.sqlite.base import SQLiteBase

_TASK_LIST_COLUMNS = "domain_id, name, task_type, kind, range_id, ack_level, data, updated_at"


def _task_list(row: Sequence[Any]) -> TaskListRecord:
    return TaskListRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


class TaskLists(SQLiteBase):
    # --- task lists (matching) --------------------------------------------------------

    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        def job(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                f"INSERT INTO task_lists ({_TASK_LIST_COLUMNS}) VALUES (?, ?, ?, ?, 1, 0, x'', ?) "
                "ON CONFLICT (domain_id, name, task_type) DO UPDATE SET range_id = range_id + 1, "
                f"updated_at = excluded.updated_at RETURNING {_TASK_LIST_COLUMNS}",
                (domain_id, name, task_type, kind, time.time_ns()),
            ).fetchall()[0]

        return _task_list(await self._write(job))

    async def update_task_list(self, task_list: TaskListRecord) -> None:
        t = task_list

        def job(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE task_lists SET ack_level = ?, data = ?, kind = ?, updated_at = ? "
                "WHERE domain_id = ? AND name = ? AND task_type = ? AND range_id = ?",
                (
                    t.ack_level,
                    bytes(t.data),
                    t.kind,
                    t.updated_at or time.time_ns(),
                    t.domain_id,
                    t.name,
                    t.task_type,
                    t.range_id,
                ),
            )
            if cur.rowcount != 1:
                _task_list_condition(conn, t.domain_id, t.name, t.task_type, t.range_id)

        await self._write(job)

    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_TASK_LIST_COLUMNS} FROM task_lists WHERE domain_id = ? ORDER BY name, task_type",
                (domain_id,),
            ).fetchall()
        )
        return [_task_list(r) for r in rows]

    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "DELETE FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ? AND range_id = ?",
                (domain_id, name, task_type, range_id),
            )
            if cur.rowcount != 1:
                _task_list_condition(conn, domain_id, name, task_type, range_id)
            conn.execute(
                "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ?",
                (domain_id, name, task_type),
            )

        await self._write(job)

    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        rows = [
            (domain_id, name, task_type, t.task_id, bytes(t.data), t.created_time, t.expiry_time)
            for t in tasks
        ]

        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT range_id FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ?",
                (domain_id, name, task_type),
            ).fetchone()
            if row is None or row[0] != range_id:
                _task_list_condition(conn, domain_id, name, task_type, range_id)
            conn.executemany(
                "INSERT OR REPLACE INTO tasks (domain_id, name, task_type, task_id, data, created_time, expiry_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._write(job)

    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT task_id, data, created_time, expiry_time FROM tasks WHERE domain_id = ? AND name = ? "
                "AND task_type = ? AND task_id > ? AND task_id <= ? ORDER BY task_id LIMIT ?",
                (domain_id, name, task_type, min_task_id, max_task_id, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TaskListTask(*r) for r in rows]

    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id = ?",
                    (domain_id, name, task_type, task_id),
                )
                and None
            )
        )

    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        return await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id <= ?",
                    (domain_id, name, task_type, task_id),
                ).rowcount
            )
        )

    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        # Counting walks the whole backlog's index range: off the loop.
        row = await self._read_slow(
            lambda c: c.execute(
                "SELECT count(*) FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id > ?",
                (domain_id, name, task_type, min_task_id),
            ).fetchone()
        )
        return int(row[0])


def _task_list_condition(
    conn: sqlite3.Connection, domain_id: str, name: str, task_type: int, range_id: int
) -> None:
    row = conn.execute(
        "SELECT range_id FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ?",
        (domain_id, name, task_type),
    ).fetchone()
    now = "does not exist" if row is None else f"has range_id {row[0]}"
    raise ConditionFailed(f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id}")
