"""Record types that cross the storage contract.

The store is deliberately dumb: it sees keys, the columns it must index or condition
on, and opaque `bytes` that the engine encodes. Adapters never interpret the blobs.
Times are integers: nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class WorkflowState(enum.IntEnum):
    CREATED = 0
    RUNNING = 1
    COMPLETED = 2  # closed; see close_status for how


class CloseStatus(enum.IntEnum):
    """Mirrors uber.cadence.api.v1.WorkflowExecutionCloseStatus values."""

    NONE = 0
    COMPLETED = 1
    FAILED = 2
    CANCELED = 3
    TERMINATED = 4
    CONTINUED_AS_NEW = 5
    TIMED_OUT = 6


class TaskListType(enum.IntEnum):
    DECISION = 0
    ACTIVITY = 1


class MapKind(enum.IntEnum):
    """The mutable-state maps, stored as rows so an update writes only what changed."""

    ACTIVITY = 1  # key: scheduled event id
    TIMER = 2  # key: timer id
    CHILD_EXECUTION = 3  # key: initiated event id
    REQUEST_CANCEL = 4  # key: initiated event id
    SIGNAL = 5  # key: initiated event id
    SIGNAL_REQUESTED = 6  # key: request id (dedup set; value may be empty)
    BUFFERED_EVENT = 7  # key: zero-padded arrival sequence, so key order = arrival order


class CreateMode(enum.IntEnum):
    BRAND_NEW = 0  # no current row may exist for the workflow id
    WORKFLOW_ID_REUSE = 1  # the current row must point at previous_run_id, which must be closed
    CONTINUE_AS_NEW = 2  # only inside UpdateWorkflow.new_run: current row swings from the closing run


# --- domains and shards ---------------------------------------------------------------


@dataclass(slots=True)
class DomainRecord:
    domain_id: str
    name: str
    status: int  # uber.cadence.api.v1.DomainStatus
    data: bytes  # the engine's encoding of the domain (an api.v1 Domain message)
    notification_version: int = 0  # set by the store: the metadata version of the write


@dataclass(slots=True)
class ShardRecord:
    shard_id: int
    range_id: int
    owner: str = ""
    transfer_ack_level: int = 0  # every transfer task id <= this is done
    timer_ack_level: int = 0  # every timer task with visibility time < this (ns) is done
    data: bytes = b""  # engine-owned extras
    updated_at: int = 0


# --- executions -------------------------------------------------------------------------


@dataclass(slots=True)
class CurrentExecutionRecord:
    run_id: str
    state: int
    close_status: int
    create_request_id: str
    start_time: int = 0


@dataclass(slots=True)
class HistoryBatch:
    """One transaction's events: `data` is a serialized api.v1 History message.

    Serialized History messages concatenate into a valid History, so a poll reply's
    history can be assembled from stored bytes without decoding them.
    """

    first_event_id: int
    last_event_id: int
    data: bytes


@dataclass(slots=True)
class TransferTask:
    task_id: int
    task_type: int
    domain_id: str
    workflow_id: str
    run_id: str
    data: bytes = b""
    visibility_time: int = 0


@dataclass(slots=True)
class TimerTask:
    visibility_time: int  # ns; fires at or after this time
    task_id: int
    task_type: int
    domain_id: str
    workflow_id: str
    run_id: str
    data: bytes = b""


@dataclass(slots=True)
class VisibilityRecord:
    domain_id: str
    workflow_id: str
    run_id: str
    workflow_type: str
    start_time: int
    execution_time: int
    task_list: str
    close_time: int | None = None  # None while open
    close_status: int | None = None  # None while open
    history_length: int = 0
    is_cron: bool = False
    memo: bytes = b""  # serialized api.v1 Memo
    search_attributes: dict[str, object] = field(default_factory=dict)  # decoded JSON values
    update_time: int = 0


@dataclass(slots=True)
class WorkflowSnapshot:
    """A whole run, as written by a create."""

    domain_id: str
    workflow_id: str
    run_id: str
    next_event_id: int
    state: int
    close_status: int
    create_request_id: str
    start_time: int
    info: bytes  # the engine's encoding of the execution info
    maps: dict[int, dict[str, bytes]] = field(default_factory=dict)  # MapKind -> key -> value


@dataclass(slots=True)
class CreateWorkflow:
    """Create a run. BRAND_NEW fails with AlreadyExists(current=...) if a current row exists."""

    snapshot: WorkflowSnapshot
    mode: CreateMode = CreateMode.BRAND_NEW
    previous_run_id: str = ""  # WORKFLOW_ID_REUSE / CONTINUE_AS_NEW: the run the current row must name
    history: list[HistoryBatch] = field(default_factory=list)
    transfer_tasks: list[TransferTask] = field(default_factory=list)
    timer_tasks: list[TimerTask] = field(default_factory=list)
    visibility: VisibilityRecord | None = None


@dataclass(slots=True)
class UpdateWorkflow:
    """One transition of one run, conditioned on `condition_next_event_id` (as loaded)."""

    domain_id: str
    workflow_id: str
    run_id: str
    condition_next_event_id: int
    next_event_id: int
    state: int
    close_status: int
    info: bytes
    map_upserts: list[tuple[int, str, bytes]] = field(default_factory=list)
    map_deletes: list[tuple[int, str]] = field(default_factory=list)
    history: list[HistoryBatch] = field(default_factory=list)
    transfer_tasks: list[TransferTask] = field(default_factory=list)
    timer_tasks: list[TimerTask] = field(default_factory=list)
    visibility: VisibilityRecord | None = None
    # True: the current row must name this run (ConditionFailed otherwise) and takes its
    # new state/close status. False: the current row is neither checked nor touched.
    update_current: bool = True
    # Continue-as-new, retry and cron: the next run, created in the same transaction;
    # the current row swings to it (its mode must be CONTINUE_AS_NEW).
    new_run: CreateWorkflow | None = None


@dataclass(slots=True)
class ExecutionRecord:
    """A run as loaded: what the engine needs to rebuild mutable state."""

    domain_id: str
    workflow_id: str
    run_id: str
    next_event_id: int
    state: int
    close_status: int
    create_request_id: str
    start_time: int
    info: bytes
    maps: dict[int, dict[str, bytes]] = field(default_factory=dict)


# --- matching ---------------------------------------------------------------------------


@dataclass(slots=True)
class TaskListRecord:
    domain_id: str
    name: str
    task_type: int  # TaskListType
    kind: int = 0  # api.v1 TaskListKind: 1 NORMAL, 2 STICKY
    range_id: int = 0
    ack_level: int = 0  # every backlog task id <= this is done
    data: bytes = b""
    updated_at: int = 0


@dataclass(slots=True)
class TaskListTask:
    task_id: int
    data: bytes  # the matching engine's encoding of the task (run, scheduled id, ...)
    created_time: int = 0
    expiry_time: int = 0  # 0: never
