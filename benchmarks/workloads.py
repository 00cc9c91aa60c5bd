"""Workloads the hot-path benchmarks share: runs built through `_core` exactly as the engine does.

Every builder takes the `_core.mutable_state` module to use (compiled or pure), so one
benchmark measures both builds on identical work. The engine's transition closures
(history/engine.py) are mirrored here step by step: `Mutation` → events/map rows →
`map_delta` + `encode_info` + `history_batch_bytes` (what `_commit_update` writes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from cadence.api.v1 import common_pb2, decision_pb2, history_pb2, service_worker_pb2, tasklist_pb2
from google.protobuf import duration_pb2

from cadence_fast.config import ServerConfig
from cadence_fast.history import decisions, tokens, views
from cadence_fast.history.engine import HistoryEngine

NS = 1_000_000_000
NOW = 1_700_000_000 * NS
TASK_LIST = "bench-tl"


def seconds(s: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(s * NS))
    return d


@contextmanager
def using_core(core: ModuleType) -> Iterator[None]:
    """Make the history modules that call `_core` use `core` (the compiled or the pure build)."""
    saved = decisions.core, views.core
    decisions.core = views.core = core
    try:
        yield
    finally:
        decisions.core, views.core = saved


def decision_handler() -> decisions.DecisionHandler:
    """The engine's DecisionHandler on an engine that is never started (no store is touched)."""
    engine = HistoryEngine(None, ServerConfig(), None, None)  # type: ignore[arg-type]
    return decisions.DecisionHandler(engine)


def new_run(core: ModuleType) -> Any:
    """A just-started run (WorkflowExecutionStarted + DecisionTaskScheduled), as _new_run builds it."""
    ms = core.MutableState()
    ms.domain_id = str(uuid.UUID(int=1))
    ms.domain_name = "bench"
    ms.workflow_id = f"wf-{uuid.uuid4().hex[:8]}"
    ms.run_id = str(uuid.uuid4())
    ms.first_run_id = ms.run_id
    ms.workflow_type = "bench-workflow"
    ms.task_list = TASK_LIST
    ms.execution_timeout = 3600 * NS
    ms.task_timeout = 10 * NS
    ms.start_time = NOW
    ms.history_complete = True
    mut = core.Mutation(NOW, 0)
    ms.add_event(
        mut,
        workflow_execution_started_event_attributes=history_pb2.WorkflowExecutionStartedEventAttributes(
            workflow_type=common_pb2.WorkflowType(name=ms.workflow_type),
            task_list=tasklist_pb2.TaskList(name=TASK_LIST),
            input=common_pb2.Payload(data=b'"input"'),
            execution_start_to_close_timeout=seconds(3600),
            task_start_to_close_timeout=seconds(10),
            original_execution_run_id=ms.run_id,
            first_execution_run_id=ms.run_id,
            identity="bench",
        ),
    )
    ms.schedule_decision(mut)
    commit(core, ms, mut)
    return ms


def commit(core: ModuleType, ms: Any, mut: Any) -> int:
    """What HistoryEngine._commit_update computes before the store call; returns the bytes written."""
    upserts, _deletes = ms.map_delta(mut)
    size = len(ms.encode_info()) + sum(len(v) for _k, _key, v in upserts)
    if mut.events:
        data = core.history_batch_bytes(mut.events)
        ms.history_size += len(data)
        ms.append_history(data, 1 << 20)
        size += len(data)
    return size


def start_decision(core: ModuleType, ms: Any, now: int) -> None:
    mut = core.Mutation(now, ms.next_event_id)
    ms.start_decision(mut, "bench-worker", str(uuid.uuid4()))
    commit(core, ms, mut)


def decision_token(ms: Any) -> tokens.TaskToken:
    return tokens.TaskToken(
        tokens.KIND_DECISION, ms.domain_id, ms.workflow_id, ms.run_id, ms.decision_schedule_id, ms.decision_attempt
    )


def schedule_activity(activity_id: str) -> decision_pb2.Decision:
    d = decision_pb2.Decision()
    a = d.schedule_activity_task_decision_attributes
    a.activity_id = activity_id
    a.activity_type.name = "bench-activity"
    a.task_list.name = TASK_LIST
    a.input.data = b'"activity input"'
    for t in (a.schedule_to_close_timeout, a.schedule_to_start_timeout, a.start_to_close_timeout):
        t.CopyFrom(seconds(3600))
    return d


def completion(decision_list: list[decision_pb2.Decision]) -> service_worker_pb2.RespondDecisionTaskCompletedRequest:
    return service_worker_pb2.RespondDecisionTaskCompletedRequest(decisions=decision_list, identity="bench-worker")


def complete_decision(
    core: ModuleType, handler: decisions.DecisionHandler, ms: Any, request: Any, now: int
) -> Any:
    mut = core.Mutation(now, ms.next_event_id)
    handler.complete(ms, mut, decision_token(ms), request, None)  # type: ignore[arg-type]
    commit(core, ms, mut)
    return mut


def start_activity(core: ModuleType, ms: Any, schedule_id: int, now: int) -> None:
    """record_activity_task_started's transition (no retry policy: the Started event is written)."""
    mut = core.Mutation(now, ms.next_event_id)
    a = ms.activities[schedule_id]
    event = ms.add_async_event(
        mut,
        activity_task_started_event_attributes=history_pb2.ActivityTaskStartedEventAttributes(
            scheduled_event_id=a.schedule_id, identity="bench-worker", request_id=str(uuid.uuid4()),
            attempt=a.attempt,
        ),
    )  # fmt: skip
    a.started_id = event.event_id
    a.started_time = now
    ms.touch_activity(mut, a)
    commit(core, ms, mut)


def complete_activity(core: ModuleType, engine: HistoryEngine, ms: Any, schedule_id: int, now: int) -> None:
    """respond_activity_task_completed's transition."""
    mut = core.Mutation(now, ms.next_event_id)
    a = ms.activities[schedule_id]
    attrs = history_pb2.ActivityTaskCompletedEventAttributes(
        scheduled_event_id=schedule_id, started_event_id=a.started_id, identity="bench-worker"
    )
    attrs.result.data = b'"ok"'
    ms.add_async_event(mut, activity_task_completed_event_attributes=attrs)
    ms.delete_activity(mut, schedule_id)
    engine.schedule_decision(ms, mut)
    commit(core, ms, mut)


def run_to_decision(core: ModuleType, handler: decisions.DecisionHandler, activities: int) -> Any:
    """A run that executed `activities` activities one after the other and has its next decision started.

    6 events and 4 transitions per activity: the history of a long-lived workflow.
    """
    ms = new_run(core)
    now = NOW
    for i in range(activities):
        now += 1_000_000
        start_decision(core, ms, now)
        complete_decision(core, handler, ms, completion([schedule_activity(str(i))]), now)
        schedule_id = ms.next_event_id - 1
        start_activity(core, ms, schedule_id, now)
        complete_activity(core, handler.engine, ms, schedule_id, now)
    start_decision(core, ms, now)
    return ms


def run_sequential_activities(core: ModuleType, handler: decisions.DecisionHandler, activities: int) -> Any:
    """`run_to_decision`, then the decision that completes the workflow."""
    ms = run_to_decision(core, handler, activities)
    done = decision_pb2.Decision()
    done.complete_workflow_execution_decision_attributes.result.data = b'"done"'
    complete_decision(core, handler, ms, completion([done]), NOW)
    return ms
