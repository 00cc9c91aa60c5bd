"""Record builders for the conformance kit: unique ids, so tests share a database safely."""

from __future__ import annotations

import random
import time
import uuid

from cadence_fast.persistence.records import (
    CloseStatus,
    CreateMode,
    CreateWorkflow,
    HistoryBatch,
    MapKind,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
    WorkflowSnapshot,
    WorkflowState,
)
from cadence_fast.persistence.store import Store

_rng = random.Random()


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4()}"


def new_shard_id() -> int:
    """A shard id no other test uses (fits a 32-bit INTEGER column)."""
    return _rng.randrange(1_000, 2_000_000_000)


async def owned_shard(store: Store, shard_id: int | None = None, owner: str = "host-a") -> tuple[int, int]:
    """Create a shard and take ownership (range_id bumped by one); return (shard_id, range_id)."""
    sid = new_shard_id() if shard_id is None else shard_id
    shard = await store.get_or_create_shard(sid)
    previous = shard.range_id
    shard.range_id += 1
    shard.owner = owner
    await store.update_shard(shard, previous)
    return sid, shard.range_id


def batch(first: int, last: int, payload: bytes | None = None) -> HistoryBatch:
    return HistoryBatch(first, last, payload if payload is not None else f"events {first}-{last}".encode())


def visibility(domain_id: str, workflow_id: str, run_id: str, **kw: object) -> VisibilityRecord:
    fields: dict[str, object] = {
        "workflow_type": "kit.Workflow",
        "start_time": time.time_ns(),
        "execution_time": 0,
        "task_list": "kit-tl",
    }
    fields.update(kw)
    if not fields["execution_time"]:
        fields["execution_time"] = fields["start_time"]
    return VisibilityRecord(domain_id=domain_id, workflow_id=workflow_id, run_id=run_id, **fields)  # type: ignore[arg-type]


def create_op(
    domain_id: str,
    workflow_id: str,
    run_id: str | None = None,
    *,
    mode: CreateMode = CreateMode.BRAND_NEW,
    previous_run_id: str = "",
    next_event_id: int = 3,
    request_id: str | None = None,
    info: bytes = b"info-v1",
    maps: dict[int, dict[str, bytes]] | None = None,
    history: list[HistoryBatch] | None = None,
    transfer: list[TransferTask] | None = None,
    timers: list[TimerTask] | None = None,
    with_visibility: bool = False,
) -> CreateWorkflow:
    run_id = run_id or uid()
    snapshot = WorkflowSnapshot(
        domain_id=domain_id,
        workflow_id=workflow_id,
        run_id=run_id,
        next_event_id=next_event_id,
        state=WorkflowState.RUNNING,
        close_status=CloseStatus.NONE,
        create_request_id=request_id or uid("req-"),
        start_time=time.time_ns(),
        info=info,
        maps=maps
        if maps is not None
        else {MapKind.ACTIVITY: {"5": b"activity-5"}, MapKind.TIMER: {"t1": b"timer"}},
    )
    return CreateWorkflow(
        snapshot=snapshot,
        mode=mode,
        previous_run_id=previous_run_id,
        history=history if history is not None else [batch(1, next_event_id - 1)],
        transfer_tasks=transfer or [],
        timer_tasks=timers or [],
        visibility=visibility(domain_id, workflow_id, run_id) if with_visibility else None,
    )


def update_op(
    create: CreateWorkflow,
    condition: int | None = None,
    *,
    events: int = 2,
    close: CloseStatus | None = None,
    **kw: object,
) -> UpdateWorkflow:
    """The next transition of `create`'s run: `events` new events in one batch."""
    s = create.snapshot
    cond = s.next_event_id if condition is None else condition
    fields: dict[str, object] = {
        "domain_id": s.domain_id,
        "workflow_id": s.workflow_id,
        "run_id": s.run_id,
        "condition_next_event_id": cond,
        "next_event_id": cond + events,
        "state": WorkflowState.COMPLETED if close is not None else WorkflowState.RUNNING,
        "close_status": close if close is not None else CloseStatus.NONE,
        "info": f"info@{cond + events}".encode(),
        "history": [batch(cond, cond + events - 1)] if events else [],
    }
    fields.update(kw)
    return UpdateWorkflow(**fields)  # type: ignore[arg-type]


def transfer_task(
    domain_id: str, workflow_id: str, run_id: str, task_id: int, task_type: int = 1
) -> TransferTask:
    return TransferTask(task_id, task_type, domain_id, workflow_id, run_id, f"transfer {task_id}".encode(), 0)


def timer_task(
    domain_id: str, workflow_id: str, run_id: str, at: int, task_id: int, task_type: int = 1
) -> TimerTask:
    return TimerTask(at, task_id, task_type, domain_id, workflow_id, run_id, f"timer {at}/{task_id}".encode())
