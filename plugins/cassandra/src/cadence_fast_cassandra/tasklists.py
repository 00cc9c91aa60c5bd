"""Task lists: one partition per list holding its lease row and its backlog tasks.

The lease row (``row_type`` 0) carries ``range_id``; creating tasks is one conditional
batch on the partition (``UPDATE ... IF range_id = ?`` plus the task inserts), so a
matching host that lost the lease writes nothing. ``task_lists_by_domain`` lists a
domain's task lists (Cassandra cannot scan the partition keys of one domain).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from cadence_fast.persistence.errors import ConditionFailed, Unavailable
from cadence_fast.persistence.records import TaskListRecord, TaskListTask
from cadence_fast_cassandra.base import CAS_RETRIES, NO_LIMIT, ConnectedStore, count_of
from cadence_fast_cassandra.driver import Row, applied

_TL_KEY = "domain_id = ? AND task_list_name = ? AND task_list_type = ?"
_TL_ROW = _TL_KEY + " AND row_type = 0 AND task_id = 0"
_TL_COLS = "range_id, kind, ack_level, list_data, updated_at"


def _task_list(domain_id: str, name: str, task_type: int, r: Row) -> TaskListRecord:
    return TaskListRecord(
        domain_id=domain_id,
        name=name,
        task_type=task_type,
        kind=int(r["kind"] or 0),
        range_id=int(r["range_id"] or 0),
        ack_level=int(r["ack_level"] or 0),
        data=r["list_data"] or b"",
        updated_at=int(r["updated_at"] or 0),
    )


class TaskListStore(ConnectedStore):
    async def _read_task_list(self, domain_id: str, name: str, task_type: int, serial: bool) -> Row | None:
        rows = await self._c().execute(
            f"SELECT {_TL_COLS} FROM tasks WHERE {_TL_ROW}", (domain_id, name, task_type), serial_read=serial
        )
        return rows[0] if rows and rows[0]["range_id"] is not None else None

    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        c = self._c()
        key = (domain_id, name, task_type)
        for _ in range(CAS_RETRIES):
            now = time.time_ns()
            row = await self._read_task_list(domain_id, name, task_type, serial=True)
            if row is None:
                ok = applied(
                    await c.execute(
                        "INSERT INTO tasks (domain_id, task_list_name, task_list_type, row_type, task_id, "
                        f"{_TL_COLS}) VALUES (?, ?, ?, 0, 0, 1, ?, 0, ?, ?) IF NOT EXISTS",
                        (*key, kind, b"", now),
                    )
                )
                record = TaskListRecord(domain_id, name, task_type, kind, 1, 0, b"", now)
            else:
                previous = int(row["range_id"])
                ok = applied(
                    await c.execute(
                        f"UPDATE tasks SET range_id = ?, updated_at = ? WHERE {_TL_ROW} IF range_id = ?",
                        (previous + 1, now, *key, previous),
                    )
                )
                record = _task_list(
                    domain_id, name, task_type, {**row, "range_id": previous + 1, "updated_at": now}
                )
            if ok:
                await c.execute(
                    "INSERT INTO task_lists_by_domain (domain_id, task_list_name, task_list_type) VALUES (?, ?, ?)",
                    key,
                )
                return record
        raise Unavailable(f"task list {name!r}: too much contention for its lease, try again")

    async def update_task_list(self, task_list: TaskListRecord) -> None:
        t = task_list
        rows = await self._c().execute(
            f"UPDATE tasks SET ack_level = ?, list_data = ?, kind = ?, updated_at = ? WHERE {_TL_ROW} IF range_id = ?",
            (
                t.ack_level,
                t.data,
                t.kind,
                t.updated_at or time.time_ns(),
                t.domain_id,
                t.name,
                t.task_type,
                t.range_id,
            ),
        )
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {t.name!r} (type {t.task_type}) {now}, expected range_id {t.range_id}"
            )

    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        c = self._c()
        names = await c.execute(
            "SELECT task_list_name, task_list_type FROM task_lists_by_domain WHERE domain_id = ?",
            (domain_id,),
        )
        keys = [(r["task_list_name"], int(r["task_list_type"])) for r in names]
        rows = await asyncio.gather(*(self._read_task_list(domain_id, n, tt, serial=False) for n, tt in keys))
        found = [
            _task_list(domain_id, n, tt, row)
            for (n, tt), row in zip(keys, rows, strict=True)
            if row is not None
        ]
        return sorted(found, key=lambda t: (t.name, t.task_type))

    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        c = self._c()
        key = (domain_id, name, task_type)
        # Tombstones dated now: a lessee that re-creates the list afterwards writes later, so
        # its row and tasks survive the range delete below.
        before = time.time_ns() // 1000
        rows = await c.execute(f"DELETE FROM tasks WHERE {_TL_ROW} IF range_id = ?", (*key, range_id))
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id}"
            )
        await c.execute(
            f"DELETE FROM tasks USING TIMESTAMP ? WHERE {_TL_KEY} AND row_type = 1", (before, *key)
        )
        await c.execute(
            "DELETE FROM task_lists_by_domain USING TIMESTAMP ? WHERE domain_id = ? AND task_list_name = ? "
            "AND task_list_type = ?",
            (before, *key),
        )

    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        key = (domain_id, name, task_type)
        statements: list[tuple[str, Sequence[Any]]] = [
            (f"UPDATE tasks SET range_id = ? WHERE {_TL_ROW} IF range_id = ?", (range_id, *key, range_id))
        ]
        for t in tasks:
            statements.append(
                (
                    "INSERT INTO tasks (domain_id, task_list_name, task_list_type, row_type, task_id, data, "
                    "created_time, expiry_time) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                    (*key, t.task_id, t.data, t.created_time, t.expiry_time),
                )
            )
        rows = await self._c().batch(statements)
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id} (lease lost)"
            )

    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        rows = await self._c().execute(
            f"SELECT task_id, data, created_time, expiry_time FROM tasks WHERE {_TL_KEY} AND row_type = 1 "
            "AND task_id > ? AND task_id <= ? LIMIT ?",
            (domain_id, name, task_type, min_task_id, max_task_id, limit if limit > 0 else NO_LIMIT),
        )
        return [
            TaskListTask(
                int(r["task_id"]), r["data"] or b"", int(r["created_time"] or 0), int(r["expiry_time"] or 0)
            )
            for r in rows
        ]

    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id = ?",
            (domain_id, name, task_type, task_id),
        )

    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        c = self._c()
        # Cassandra deletes do not report what they removed: count first (the answer is advisory).
        n = count_of(
            await c.execute(
                f"SELECT count(*) FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id <= ?",
                (domain_id, name, task_type, task_id),
            )
        )
        await c.execute(
            f"DELETE FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id <= ?",
            (domain_id, name, task_type, task_id),
        )
        return n

    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        return count_of(
            await self._c().execute(
                f"SELECT count(*) FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id > ?",
                (domain_id, name, task_type, min_task_id),
            )
        )
