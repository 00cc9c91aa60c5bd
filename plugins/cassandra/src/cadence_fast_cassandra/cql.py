"""The CQL of a shard write, as pure functions: ops in, ``[(cql, params), ...]`` out.

Nothing here talks to a database, so the statements (and above all their LWT
conditions) are unit-tested without a Cassandra server; `store.py` prepares and
executes them.

One op = one LOGGED batch on the shard's partition of ``executions`` (server-brief §3):

- the shard row ``UPDATE ... SET range_id = r ... IF range_id = r`` (fencing: a batch
  of a host that lost the shard fails whole);
- the execution row ``INSERT ... IF NOT EXISTS`` (create) or
  ``UPDATE ... IF next_event_id = condition`` (update);
- the current row ``INSERT ... IF NOT EXISTS`` (brand new), ``UPDATE ... IF
  current_run_id = previous AND current_state = COMPLETED`` (id reuse),
  ``IF current_run_id = previous`` (continue-as-new) or ``IF current_run_id = run``
  (an update that keeps the current row);
- transfer and timer task rows and HISTORY_TXN rows, unconditioned.

Cassandra applies a conditional batch all or nothing, so an op whose condition fails
leaves no trace in the shard partition. Group commit therefore runs each op as its own
batch (see `CassandraStore.commit`).

Transaction ids (why history of a failed op stays invisible): history batches are big
and belong in their own partition (``history_node``, one per run), which a conditional
batch on the shard partition cannot include. So an op first appends its history nodes
keyed (node_id = first event id, txn_id = a fresh random 63-bit id of the op), then
runs its batch, which also writes one HISTORY_TXN row per node into the shard
partition: (run, node_id) -> (txn_id, last_event_id). A reader lists the HISTORY_TXN
rows of the run first and returns only the history nodes whose (node_id, txn_id) they
confirm. A node of a failed, fenced or never-finished transaction is never confirmed,
so it never shows — whatever txn ids racing writers drew — and the confirmation is
atomic with the execution row's next_event_id because both are in the same batch.
Unconfirmed nodes are deleted best-effort when the batch is known to have failed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from cadence_fast.persistence.records import (
    CreateMode,
    CreateWorkflow,
    HistoryBatch,
    MapKind,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    WorkflowState,
)

Stmt = tuple[str, tuple[Any, ...]]


class RowType(enum.IntEnum):
    """The ``type`` clustering column of ``executions``."""

    SHARD = 0
    EXECUTION = 1
    CURRENT = 2
    TRANSFER = 3
    TIMER = 4
    HISTORY_TXN = 5


#: Fills the clustering columns a row type does not use (as Cadence's permanent UUIDs).
SENTINEL = "00000000-0000-0000-0000-000000000000"

#: MapKind -> the execution row's map column.
MAP_COLUMNS: dict[int, str] = {
    MapKind.ACTIVITY: "activity_map",
    MapKind.TIMER: "timer_map",
    MapKind.CHILD_EXECUTION: "child_execution_map",
    MapKind.REQUEST_CANCEL: "request_cancel_map",
    MapKind.SIGNAL: "signal_map",
    MapKind.SIGNAL_REQUESTED: "signal_requested_map",
    MapKind.BUFFERED_EVENT: "buffered_events_map",
}

KEY = "shard_id = ? AND type = ? AND domain_id = ? AND workflow_id = ? AND run_id = ? AND visibility_ts = ? AND task_id = ?"
KEY_COLUMNS = "shard_id, type, domain_id, workflow_id, run_id, visibility_ts, task_id"


def map_column(kind: int) -> str:
    try:
        return MAP_COLUMNS[int(kind)]
    except KeyError:
        raise ValueError(f"unknown mutable-state map kind {kind!r}") from None


# --- row keys --------------------------------------------------------------------------------


def shard_key(shard_id: int) -> tuple[Any, ...]:
    return (shard_id, RowType.SHARD.value, SENTINEL, SENTINEL, SENTINEL, 0, 0)


def execution_key(shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> tuple[Any, ...]:
    return (shard_id, RowType.EXECUTION.value, domain_id, workflow_id, run_id, 0, 0)


def current_key(shard_id: int, domain_id: str, workflow_id: str) -> tuple[Any, ...]:
    return (shard_id, RowType.CURRENT.value, domain_id, workflow_id, SENTINEL, 0, 0)


def transfer_key(shard_id: int, task_id: int) -> tuple[Any, ...]:
    return (shard_id, RowType.TRANSFER.value, SENTINEL, SENTINEL, SENTINEL, 0, task_id)


def timer_key(shard_id: int, visibility_time: int, task_id: int) -> tuple[Any, ...]:
    return (shard_id, RowType.TIMER.value, SENTINEL, SENTINEL, SENTINEL, visibility_time, task_id)


def queue_prefix(shard_id: int, row_type: RowType) -> tuple[Any, ...]:
    """The equality-restricted clustering prefix of a shard's transfer or timer rows."""
    return (shard_id, row_type.value, SENTINEL, SENTINEL, SENTINEL)


def history_txn_prefix(shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> tuple[Any, ...]:
    return (shard_id, RowType.HISTORY_TXN.value, domain_id, workflow_id, run_id, 0)


QUEUE_PREFIX = "shard_id = ? AND type = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?"
HISTORY_TXN_PREFIX = QUEUE_PREFIX + " AND visibility_ts = ?"


# --- the statements of one op ------------------------------------------------------------------

SHARD_CONDITION = f"UPDATE executions SET range_id = ? WHERE {KEY} IF range_id = ?"

_EXEC_VALUE_COLUMNS = "next_event_id, state, close_status, create_request_id, start_time, info"
_CURRENT_VALUE_COLUMNS = (
    "current_run_id, current_state, current_close_status, current_create_request_id, current_start_time"
)


def shard_condition(shard_id: int, range_id: int) -> Stmt:
    """In every batch: re-write range_id with itself, conditioned on it (fencing)."""
    return SHARD_CONDITION, (range_id, *shard_key(shard_id), range_id)


def _insert_execution(shard_id: int, op: CreateWorkflow) -> Stmt:
    s = op.snapshot
    columns = [_EXEC_VALUE_COLUMNS]
    values: list[Any] = [s.next_event_id, s.state, s.close_status, s.create_request_id, s.start_time, s.info]
    for kind in sorted(s.maps):
        entries = s.maps[kind]
        if entries:
            columns.append(map_column(kind))
            values.append(dict(entries))
    marks = ", ".join(["?"] * (7 + len(values)))
    cql = f"INSERT INTO executions ({KEY_COLUMNS}, {', '.join(columns)}) VALUES ({marks}) IF NOT EXISTS"
    return cql, (*execution_key(shard_id, s.domain_id, s.workflow_id, s.run_id), *values)


def _current_values(op: CreateWorkflow) -> tuple[Any, ...]:
    s = op.snapshot
    return (s.run_id, s.state, s.close_status, s.create_request_id, s.start_time)


def _create_current(shard_id: int, op: CreateWorkflow, condition_run_id: str | None) -> Stmt:
    """The current-row statement of a create, with its condition per mode.

    `condition_run_id` overrides the run the current row must name (continue-as-new
    inside an update); None uses the op's own mode and previous_run_id.
    """
    s = op.snapshot
    key = current_key(shard_id, s.domain_id, s.workflow_id)
    sets = (
        "current_run_id = ?, current_state = ?, current_close_status = ?, current_create_request_id = ?, "
        "current_start_time = ?"
    )
    if condition_run_id is None and op.mode == CreateMode.BRAND_NEW:
        cql = (
            f"INSERT INTO executions ({KEY_COLUMNS}, {_CURRENT_VALUE_COLUMNS}) VALUES ({', '.join(['?'] * 12)}) "
            "IF NOT EXISTS"
        )
        return cql, (*key, *_current_values(op))
    if condition_run_id is None and op.mode == CreateMode.WORKFLOW_ID_REUSE:
        cql = f"UPDATE executions SET {sets} WHERE {KEY} IF current_run_id = ? AND current_state = ?"
        return cql, (*_current_values(op), *key, op.previous_run_id, WorkflowState.COMPLETED.value)
    if condition_run_id is None and op.mode != CreateMode.CONTINUE_AS_NEW:
        raise ValueError(f"unknown create mode {op.mode!r}")
    previous = op.previous_run_id if condition_run_id is None else condition_run_id
    return f"UPDATE executions SET {sets} WHERE {KEY} IF current_run_id = ?", (
        *_current_values(op),
        *key,
        previous,
    )


def _task_rows(shard_id: int, transfer: Sequence[TransferTask], timers: Sequence[TimerTask]) -> list[Stmt]:
    out: list[Stmt] = []
    columns = "task_type, task_domain_id, task_workflow_id, task_run_id, task_data, task_visibility_time"
    for t in transfer:
        out.append(
            (
                f"INSERT INTO executions ({KEY_COLUMNS}, {columns}) VALUES ({', '.join(['?'] * 13)})",
                (
                    *transfer_key(shard_id, t.task_id),
                    t.task_type,
                    t.domain_id,
                    t.workflow_id,
                    t.run_id,
                    t.data,
                    t.visibility_time,
                ),
            )
        )
    for tm in timers:
        out.append(
            (
                f"INSERT INTO executions ({KEY_COLUMNS}, {columns}) VALUES ({', '.join(['?'] * 13)})",
                (
                    *timer_key(shard_id, tm.visibility_time, tm.task_id),
                    tm.task_type,
                    tm.domain_id,
                    tm.workflow_id,
                    tm.run_id,
                    tm.data,
                    0,
                ),
            )
        )
    return out


def _history_confirmations(
    shard_id: int, domain_id: str, workflow_id: str, run_id: str, history: Sequence[HistoryBatch], txn_id: int
) -> list[Stmt]:
    cql = (
        f"INSERT INTO executions ({KEY_COLUMNS}, history_txn_id, history_last_event_id) "
        f"VALUES ({', '.join(['?'] * 9)})"
    )
    return [
        (
            cql,
            (
                shard_id,
                RowType.HISTORY_TXN.value,
                domain_id,
                workflow_id,
                run_id,
                0,
                b.first_event_id,
                txn_id,
                b.last_event_id,
            ),
        )
        for b in history
    ]


def _create_rows(shard_id: int, op: CreateWorkflow, txn_id: int) -> list[Stmt]:
    s = op.snapshot
    return [
        _insert_execution(shard_id, op),
        *_task_rows(shard_id, op.transfer_tasks, op.timer_tasks),
        *_history_confirmations(shard_id, s.domain_id, s.workflow_id, s.run_id, op.history, txn_id),
    ]


def create_statements(shard_id: int, range_id: int, op: CreateWorkflow, txn_id: int) -> list[Stmt]:
    """The conditional batch of a CreateWorkflow op."""
    return [
        shard_condition(shard_id, range_id),
        _create_current(shard_id, op, None),
        *_create_rows(shard_id, op, txn_id),
    ]


class ImpossibleCondition(ValueError):
    """The op's conditions contradict each other: it can never apply (ConditionFailed)."""


def update_statements(shard_id: int, range_id: int, op: UpdateWorkflow, txn_id: int) -> list[Stmt]:
    """The conditional batch of an UpdateWorkflow op (with its continue-as-new run, if any)."""
    key = execution_key(shard_id, op.domain_id, op.workflow_id, op.run_id)
    upserted: dict[int, dict[str, bytes]] = {}
    for kind, k, v in op.map_upserts:
        upserted.setdefault(int(kind), {})[k] = v
    # All statements of a batch share one write timestamp, and a tombstone wins a tie:
    # a key both deleted and upserted by one op must only be upserted (delete, then upsert).
    removed: dict[int, set[str]] = {}
    for kind, k in op.map_deletes:
        if k not in upserted.get(int(kind), {}):
            removed.setdefault(int(kind), set()).add(k)
    sets = ["next_event_id = ?", "state = ?", "close_status = ?", "info = ?"]
    values: list[Any] = [op.next_event_id, op.state, op.close_status, op.info]
    for kind in sorted(upserted):
        column = map_column(kind)
        sets.append(f"{column} = {column} + ?")
        values.append(upserted[kind])
    stmts: list[Stmt] = [
        shard_condition(shard_id, range_id),
        (
            f"UPDATE executions SET {', '.join(sets)} WHERE {KEY} IF next_event_id = ?",
            (*values, *key, op.condition_next_event_id),
        ),
    ]
    if removed:
        columns = [map_column(kind) for kind in sorted(removed)]
        stmts.append(
            (
                f"UPDATE executions SET {', '.join(f'{c} = {c} - ?' for c in columns)} WHERE {KEY}",
                (*(removed[kind] for kind in sorted(removed)), *key),
            )
        )
    new = op.new_run
    if new is None:
        if op.update_current:
            stmts.append(
                (
                    f"UPDATE executions SET current_state = ?, current_close_status = ? WHERE {KEY} "
                    "IF current_run_id = ?",
                    (
                        op.state,
                        op.close_status,
                        *current_key(shard_id, op.domain_id, op.workflow_id),
                        op.run_id,
                    ),
                )
            )
    else:
        if new.mode != CreateMode.CONTINUE_AS_NEW:
            raise ImpossibleCondition("UpdateWorkflow.new_run must use CreateMode.CONTINUE_AS_NEW")
        same_workflow = (new.snapshot.domain_id, new.snapshot.workflow_id) == (op.domain_id, op.workflow_id)
        if op.update_current and same_workflow and new.previous_run_id != op.run_id:
            raise ImpossibleCondition(
                f"the current row cannot name both {op.run_id!r} (update_current) and the continued run "
                f"{new.previous_run_id!r}"
            )
        if op.update_current and not same_workflow:
            stmts.append(
                (
                    f"UPDATE executions SET current_state = ?, current_close_status = ? WHERE {KEY} "
                    "IF current_run_id = ?",
                    (
                        op.state,
                        op.close_status,
                        *current_key(shard_id, op.domain_id, op.workflow_id),
                        op.run_id,
                    ),
                )
            )
        # The current row swings from the continued run to the new one.
        stmts.append(_create_current(shard_id, new, new.previous_run_id))
        stmts.extend(_create_rows(shard_id, new, txn_id))
    stmts.extend(_task_rows(shard_id, op.transfer_tasks, op.timer_tasks))
    stmts.extend(
        _history_confirmations(shard_id, op.domain_id, op.workflow_id, op.run_id, op.history, txn_id)
    )
    return stmts


def op_statements(
    shard_id: int, range_id: int, op: CreateWorkflow | UpdateWorkflow, txn_id: int
) -> list[Stmt]:
    if isinstance(op, CreateWorkflow):
        return create_statements(shard_id, range_id, op, txn_id)
    return update_statements(shard_id, range_id, op, txn_id)


# --- history appends (before the batch) --------------------------------------------------------

HISTORY_INSERT = (
    "INSERT INTO history_node (domain_id, workflow_id, run_id, node_id, txn_id, last_event_id, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
HISTORY_DELETE = "DELETE FROM history_node WHERE domain_id = ? AND workflow_id = ? AND run_id = ? AND node_id = ? AND txn_id = ?"


def _runs_with_history(op: CreateWorkflow | UpdateWorkflow) -> list[tuple[str, str, str, list[HistoryBatch]]]:
    if isinstance(op, CreateWorkflow):
        s = op.snapshot
        return [(s.domain_id, s.workflow_id, s.run_id, op.history)]
    runs = [(op.domain_id, op.workflow_id, op.run_id, op.history)]
    if op.new_run is not None:
        runs.extend(_runs_with_history(op.new_run))
    return runs


def history_appends(op: CreateWorkflow | UpdateWorkflow, txn_id: int) -> list[Stmt]:
    """The history nodes an op writes to their runs' partitions before its conditional batch."""
    return [
        (HISTORY_INSERT, (domain_id, workflow_id, run_id, b.first_event_id, txn_id, b.last_event_id, b.data))
        for domain_id, workflow_id, run_id, batches in _runs_with_history(op)
        for b in batches
    ]


def history_cleanup(op: CreateWorkflow | UpdateWorkflow, txn_id: int) -> list[Stmt]:
    """Deletes of the nodes `history_appends` wrote: for an op whose batch surely failed."""
    return [
        (HISTORY_DELETE, (domain_id, workflow_id, run_id, b.first_event_id, txn_id))
        for domain_id, workflow_id, run_id, batches in _runs_with_history(op)
        for b in batches
    ]


def workflows_of(op: CreateWorkflow | UpdateWorkflow) -> set[tuple[str, str]]:
    """The (domain, workflow id) pairs an op writes: ops sharing one run in order."""
    if isinstance(op, CreateWorkflow):
        return {(op.snapshot.domain_id, op.snapshot.workflow_id)}
    out = {(op.domain_id, op.workflow_id)}
    if op.new_run is not None:
        out |= workflows_of(op.new_run)
    return out
