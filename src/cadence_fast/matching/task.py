"""The unit matching moves: a decision, activity or query task bound for one task list."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cadence_fast.persistence.records import TaskListTask

KIND_NORMAL = 1  # tasklist_pb2.TASK_LIST_KIND_NORMAL
KIND_STICKY = 2  # tasklist_pb2.TASK_LIST_KIND_STICKY


@dataclass(slots=True)
class MatchTask:
    domain_id: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    task_list: str  # task list name
    task_type: int  # records.TaskListType.DECISION / ACTIVITY
    kind: int = KIND_NORMAL
    schedule_attempt: int = 0
    created_time: int = 0  # ns since epoch
    expiry_time: int = 0  # ns; 0 = never; matching drops expired tasks
    on_done: Callable[[], None] | None = None  # NOT persisted: completes the transfer task
    query: object | None = None  # query tasks: never persisted, sync-match only
    # Set by matching, not by callers: the backlog task id (0: never persisted, i.e. the
    # task was sync-matched) and the task list manager that handed it out.
    task_id: int = field(default=0, compare=False)
    owner: Any = field(default=None, repr=False, compare=False)


def encode(task: MatchTask) -> bytes:
    """The backlog row's blob: what is not implied by the task list or the row's columns."""
    return json.dumps(
        [task.workflow_id, task.run_id, task.scheduled_event_id, task.schedule_attempt], separators=(",", ":")
    ).encode()


def decode(row: TaskListTask, domain_id: str, task_list: str, task_type: int, kind: int) -> MatchTask:
    workflow_id, run_id, scheduled_event_id, attempt = json.loads(row.data)
    return MatchTask(
        domain_id=domain_id,
        workflow_id=workflow_id,
        run_id=run_id,
        scheduled_event_id=scheduled_event_id,
        task_list=task_list,
        task_type=task_type,
        kind=kind,
        schedule_attempt=attempt,
        created_time=row.created_time,
        expiry_time=row.expiry_time,
        task_id=row.task_id,
    )
