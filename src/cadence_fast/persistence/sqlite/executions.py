"""Executions on SQLite: runs, their maps, current-run pointers, and the commit path.

`commit_job` and the functions below it run inside the writer's group transaction;
raising from any point leaves no trace of the op (see commit_job and writer.py).
`Executions` is the part of SQLiteStore that serves the execution calls of the contract.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from cadence_fast.persistence.errors import AlreadyExists, ConditionFailed, NotFound, ShardOwnershipLost
from cadence_fast.persistence.records import (
    CreateMode,
    CreateWorkflow,
    CurrentExecutionRecord,
    ExecutionRecord,
    HistoryBatch,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
    WorkflowState,
)
from cadence_fast.persistence.sqlite.base import SQLiteBase
from cadence_fast.persistence.sqlite.writer import TxnState

SELECT_CURRENT = (
    "SELECT run_id, state, close_status, create_request_id, start_time FROM current_executions "
    "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ?"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (shard_id, domain_id, workflow_id, run_id, next_event_id, state, close_status, "
    "create_request_id, start_time, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_EXECUTION = (
    "UPDATE executions SET next_event_id = ?, state = ?, close_status = ?, info = ? "
    "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ? AND next_event_id = ?"
)
_UPSERT_CURRENT = (
    "INSERT OR REPLACE INTO current_executions (shard_id, domain_id, workflow_id, run_id, state, close_status, "
    "create_request_id, start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_MAP = (
    "INSERT INTO execution_maps (shard_id, domain_id, workflow_id, run_id, kind, key, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (shard_id, domain_id, workflow_id, run_id, kind, key) "
    "DO UPDATE SET value = excluded.value"
)
_DELETE_MAP = (
    "DELETE FROM execution_maps WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ? "
    "AND kind = ? AND key = ?"
)
_INSERT_HISTORY = (
    "INSERT INTO history_batches (shard_id, domain_id, workflow_id, run_id, first_event_id, last_event_id, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Task ids are unique per shard (range blocks), so a replayed write of the same task is the same task.
_INSERT_TRANSFER = (
    "INSERT OR REPLACE INTO transfer_tasks (shard_id, task_id, task_type, domain_id, workflow_id, run_id, data, "
    "visibility_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TIMER = (
    "INSERT OR REPLACE INTO timer_tasks (shard_id, visibility_time, task_id, task_type, domain_id, workflow_id, "
    "run_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_VISIBILITY_INSERT = (
    "INTO executions_visibility (domain_id, run_id, workflow_id, workflow_type, start_time, "
    "execution_time, close_time, close_status, history_length, task_list, is_cron, memo, search_attributes, "
    "update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A run's record is written at start and rewritten at close (and on search attribute
# upserts): the rewrite updates the row in place and only the indexes of the columns it
# names (the close_time / close_status ones), where INSERT OR REPLACE deletes and
# re-inserts the row in the table and all nine of its indexes. The columns of the other
# indexes must be the stored ones; if not, `_REPLACE_VISIBILITY` writes the record whole.
_UPSERT_VISIBILITY = (
    f"INSERT {_VISIBILITY_INSERT} ON CONFLICT (domain_id, run_id) DO UPDATE SET "
    "execution_time = excluded.execution_time, close_time = excluded.close_time, "
    "close_status = excluded.close_status, history_length = excluded.history_length, "
    "task_list = excluded.task_list, is_cron = excluded.is_cron, memo = excluded.memo, "
    "search_attributes = excluded.search_attributes, update_time = excluded.update_time "
    "WHERE workflow_id = excluded.workflow_id AND workflow_type = excluded.workflow_type "
    "AND start_time = excluded.start_time"
)
_REPLACE_VISIBILITY = f"INSERT OR REPLACE {_VISIBILITY_INSERT}"


def upsert_visibility(conn: sqlite3.Connection, params: tuple[object, ...]) -> None:
    """Insert or replace a run's visibility record (params: `visibility_params`)."""
    if conn.execute(_UPSERT_VISIBILITY, params).rowcount != 1:
        conn.execute(_REPLACE_VISIBILITY, params)


def visibility_params(r: VisibilityRecord) -> tuple[object, ...]:
    return (
        r.domain_id,
        r.run_id,
        r.workflow_id,
        r.workflow_type,
        r.start_time,
        r.execution_time,
        r.close_time,
        r.close_status,
        r.history_length,
        r.task_list,
        1 if r.is_cron else 0,
        bytes(r.memo),
        json.dumps(r.search_attributes, ensure_ascii=False, separators=(",", ":")),
        r.update_time,
    )


def current_record(row: Sequence[object]) -> CurrentExecutionRecord:
    return CurrentExecutionRecord(
        run_id=str(row[0]),
        state=int(row[1]),  # type: ignore[call-overload]
        close_status=int(row[2]),  # type: ignore[call-overload]
        create_request_id=str(row[3]),
        start_time=int(row[4]),  # type: ignore[call-overload]
    )


def check_range(conn: sqlite3.Connection, state: TxnState, shard_id: int, range_id: int) -> None:
    """Fencing: this owner's range_id must still be the shard's. Read once per transaction:
    no other writer can change `shards` while this one holds the write lock, and the jobs
    of this store that do (metadata.py) update `state.shard_ranges`."""
    ranges = state.shard_ranges
    if shard_id in ranges:
        current = ranges[shard_id]
    else:
        row = conn.execute("SELECT range_id FROM shards WHERE shard_id = ?", (shard_id,)).fetchone()
        current = ranges[shard_id] = None if row is None else row[0]
    if current == range_id:
        return
    if current is None:
        raise ShardOwnershipLost(shard_id, f"shard {shard_id}: no such shard (range_id {range_id} expected)")
    raise ShardOwnershipLost(
        shard_id, f"shard {shard_id}: ownership lost (range_id is {current}, this owner holds {range_id})"
    )


def commit_job(
    conn: sqlite3.Connection,
    state: TxnState,
    shard_id: int,
    range_id: int,
    ops: Sequence[CreateWorkflow | UpdateWorkflow],
) -> list[BaseException | None]:
    """The body of Store.commit, run by the writer inside the group transaction."""
    check_range(conn, state, shard_id, range_id)
    if len(ops) == 1:
        # The writer scopes a lone op: it raises its ConditionFailed/AlreadyExists and
        # SQLiteStore.commit puts it in the result list.
        _apply(conn, shard_id, ops[0])
        return [None]
    results: list[BaseException | None] = []
    if not state.scoped:
        # No savepoint per op: an op that fails before changing a row needs no undo; one
        # that fails after re-raises, and the writer reruns the batch scoped (writer.py).
        for op in ops:
            before = conn.total_changes
            try:
                _apply(conn, shard_id, op)
            except (ConditionFailed, AlreadyExists) as e:
                if conn.total_changes != before:
                    raise
                results.append(e)
            else:
                results.append(None)
        return results
    for op in ops:
        conn.execute("SAVEPOINT op")
        try:
            _apply(conn, shard_id, op)
        except (ConditionFailed, AlreadyExists) as e:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            results.append(e)
        else:
            conn.execute("RELEASE op")
            results.append(None)
    return results


def _apply(conn: sqlite3.Connection, shard_id: int, op: CreateWorkflow | UpdateWorkflow) -> None:
    if isinstance(op, CreateWorkflow):
        _create(conn, shard_id, op)
    else:
        _update(conn, shard_id, op)


def _create(conn: sqlite3.Connection, shard_id: int, op: CreateWorkflow) -> None:
    s = op.snapshot
    row = conn.execute(SELECT_CURRENT, (shard_id, s.domain_id, s.workflow_id)).fetchone()
    current = current_record(row) if row is not None else None
    if op.mode == CreateMode.BRAND_NEW:
        if current is not None:
            raise AlreadyExists(
                f"workflow {s.workflow_id!r} already has a current run {current.run_id}", current=current
            )
    else:
        if current is None:
            raise ConditionFailed(
                f"workflow {s.workflow_id!r} has no current run (expected {op.previous_run_id})"
            )
        if current.run_id != op.previous_run_id:
            raise ConditionFailed(
                f"workflow {s.workflow_id!r}: current run is {current.run_id}, expected {op.previous_run_id}"
            )
        if op.mode == CreateMode.WORKFLOW_ID_REUSE and current.state != WorkflowState.COMPLETED:
            raise AlreadyExists(
                f"workflow {s.workflow_id!r}: current run {current.run_id} is still open", current=current
            )
    try:
        conn.execute(
            _INSERT_EXECUTION,
            (
                shard_id,
                s.domain_id,
                s.workflow_id,
                s.run_id,
                s.next_event_id,
                s.state,
                s.close_status,
                s.create_request_id,
                s.start_time,
                bytes(s.info),
            ),
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists(
            f"run {s.run_id} of workflow {s.workflow_id!r} already exists", current=current
        ) from None
    key = (shard_id, s.domain_id, s.workflow_id, s.run_id)
    if s.maps:
        conn.executemany(
            _UPSERT_MAP,
            [(*key, int(kind), k, bytes(v)) for kind, entries in s.maps.items() for k, v in entries.items()],
        )
    _append(conn, shard_id, key, op.history, op.transfer_tasks, op.timer_tasks, op.visibility)
    conn.execute(
        _UPSERT_CURRENT,
        (
            shard_id,
            s.domain_id,
            s.workflow_id,
            s.run_id,
            s.state,
            s.close_status,
            s.create_request_id,
            s.start_time,
        ),
    )


def _update(conn: sqlite3.Connection, shard_id: int, op: UpdateWorkflow) -> None:
    key = (shard_id, op.domain_id, op.workflow_id, op.run_id)
    if op.update_current:
        # Check and write the current row in one statement: it must name this run.
        cur = conn.execute(
            "UPDATE current_executions SET state = ?, close_status = ? "
            "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?",
            (op.state, op.close_status, *key),
        )
        if cur.rowcount != 1:
            row = conn.execute(SELECT_CURRENT, key[:3]).fetchone()
            named = "no current run" if row is None else f"current run is {row[0]}"
            raise ConditionFailed(f"workflow {op.workflow_id!r}: {named}, expected {op.run_id}")
    cur = conn.execute(
        _UPDATE_EXECUTION,
        (op.next_event_id, op.state, op.close_status, bytes(op.info), *key, op.condition_next_event_id),
    )
    if cur.rowcount != 1:
        row = conn.execute(
            "SELECT next_event_id FROM executions WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? "
            "AND run_id = ?",
            key,
        ).fetchone()
        if row is None:
            raise ConditionFailed(f"run {op.run_id} of workflow {op.workflow_id!r} does not exist")
        raise ConditionFailed(
            f"run {op.run_id}: next_event_id is {row[0]}, the update expected {op.condition_next_event_id}"
        )
    if op.map_upserts:
        conn.executemany(_UPSERT_MAP, [(*key, int(kind), k, bytes(v)) for kind, k, v in op.map_upserts])
    if op.map_deletes:
        conn.executemany(_DELETE_MAP, [(*key, int(kind), k) for kind, k in op.map_deletes])
    _append(conn, shard_id, key, op.history, op.transfer_tasks, op.timer_tasks, op.visibility)
    if op.new_run is not None:
        _create(conn, shard_id, op.new_run)


def _append(
    conn: sqlite3.Connection,
    shard_id: int,
    key: tuple[int, str, str, str],
    history: Iterable[HistoryBatch],
    transfer_tasks: Sequence[TransferTask],
    timer_tasks: Sequence[TimerTask],
    visibility: VisibilityRecord | None,
) -> None:
    for b in history:
        try:
            conn.execute(_INSERT_HISTORY, (*key, b.first_event_id, b.last_event_id, bytes(b.data)))
        except sqlite3.IntegrityError:
            raise ConditionFailed(
                f"run {key[3]}: a history batch starting at event {b.first_event_id} already exists"
            ) from None
    if transfer_tasks:
        conn.executemany(
            _INSERT_TRANSFER,
            [
                (
                    shard_id,
                    t.task_id,
                    t.task_type,
                    t.domain_id,
                    t.workflow_id,
                    t.run_id,
                    bytes(t.data),
                    t.visibility_time,
                )
                for t in transfer_tasks
            ],
        )
    if timer_tasks:
        conn.executemany(
            _INSERT_TIMER,
            [
                (
                    shard_id,
                    t.visibility_time,
                    t.task_id,
                    t.task_type,
                    t.domain_id,
                    t.workflow_id,
                    t.run_id,
                    bytes(t.data),
                )
                for t in timer_tasks
            ],
        )
    if visibility is not None:
        upsert_visibility(conn, visibility_params(visibility))


class Executions(SQLiteBase):
    # --- executions -----------------------------------------------------------------

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        ops = list(ops)
        state = self._txn_state()
        try:
            return await self._write(lambda conn: commit_job(conn, state, shard_id, range_id, ops))
        except (ConditionFailed, AlreadyExists) as e:
            if len(ops) == 1:  # a lone op's condition failed (see commit_job)
                return [e]
            raise

    async def get_execution(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord:
        key = (shard_id, domain_id, workflow_id, run_id)

        def read(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
            # Two statements, one snapshot: a commit landing between them must not mix versions.
            conn.execute("BEGIN")
            try:
                return read_run(conn)
            finally:
                conn.execute("COMMIT")

        def read_run(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
            row = conn.execute(
                "SELECT next_event_id, state, close_status, create_request_id, start_time, info FROM executions "
                "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?",
                key,
            ).fetchone()
            if row is None:
                return None, []
            maps = conn.execute(
                "SELECT kind, key, value FROM execution_maps "
                "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ? ORDER BY kind, key",
                key,
            ).fetchall()
            return row, maps

        row, map_rows = await self._read(read)
        if row is None:
            raise NotFound(f"run {run_id} of workflow {workflow_id!r} does not exist")
        maps: dict[int, dict[str, bytes]] = {}
        for kind, k, v in map_rows:
            maps.setdefault(kind, {})[k] = v
        return ExecutionRecord(
            domain_id, workflow_id, run_id, row[0], row[1], row[2], row[3], row[4], row[5], maps
        )

    async def get_current_execution(
        self, shard_id: int, domain_id: str, workflow_id: str
    ) -> CurrentExecutionRecord:
        row = await self._read(
            lambda c: c.execute(SELECT_CURRENT, (shard_id, domain_id, workflow_id)).fetchone()
        )
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} has no current run")
        return current_record(row)

    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        key = (shard_id, domain_id, workflow_id, run_id)
        where = "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?"

        def job(conn: sqlite3.Connection) -> None:
            for table in ("executions", "execution_maps", "history_batches", "current_executions"):
                conn.execute(f"DELETE FROM {table} {where}", key)

        await self._write(job)
