"""Continue-as-new, workflow retry and cron: a run closes ContinuedAsNew and its successor
is created in the same transaction (UpdateWorkflow.new_run; the current row swings to it)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import common_pb2, decision_pb2, history_pb2, service_workflow_pb2, workflow_pb2

from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import cron, retry
from cadence_fast.persistence.records import CloseStatus, CreateMode

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine


@dataclass(slots=True)
class Continuation:
    """What a successor run inherits besides its start request."""

    first_run_id: str
    initiator: int
    attempt: int = 0
    backoff: int = 0
    expiration_time: int = 0
    failure: common_pb2.Failure | None = None
    last_completion_result: common_pb2.Payload | None = None
    now: int = 0  # the predecessor's close time (ns): the successor's start time


def retry_backoff(ms: Any, reason: str, now: int) -> int | None:
    """The wait before the next attempt of a failed run, None if its retry policy says stop."""
    if not ms.retry_policy:
        return None
    return retry.next_retry_delay(
        ms.retry_policy, ms.attempt, reason, now=now, expiration_time=ms.expiration_time
    )


def _cron_backoff(ms: Any, now: int) -> int | None:
    """Go's GetCronBackoffDuration: the schedule anchored at the run's execution time (start +
    first-decision backoff), with the run's overlap policy; None if it never fires again."""
    try:
        return cron.backoff_for_cron(
            ms.cron_schedule, ms.execution_time or ms.start_time, now, overlap_policy=ms.cron_overlap_policy
        )
    except cron.CronError:
        return None


def close_or_continue(
    engine: HistoryEngine,
    ms: Any,
    mut: Any,
    domain: DomainEntry,
    status: int,
    completed_id: int,
    *,
    failure: common_pb2.Failure | None = None,
    result: common_pb2.Payload | None = None,
) -> bool:
    """For a run about to complete, fail or time out: retry or cron it if its policy says so.

    Returns True if the run was continued (the caller writes no close event of its own)."""
    if status in (CloseStatus.FAILED, CloseStatus.TIMED_OUT):
        reason = failure.reason if failure is not None else ""
        backoff = retry_backoff(ms, reason, mut.now)
        if backoff is not None:
            attrs = decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
                backoff_start_interval=core.dur(backoff),
                initiator=workflow_pb2.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY,
            )
            if failure is not None:
                attrs.failure.CopyFrom(failure)
            continue_as_new(engine, ms, mut, domain, attrs, completed_id)
            return True
    backoff = _cron_backoff(ms, mut.now) if ms.cron_schedule else None
    if backoff is not None and status in (CloseStatus.COMPLETED, CloseStatus.FAILED, CloseStatus.TIMED_OUT):
        attrs = decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
            backoff_start_interval=core.dur(backoff),
            initiator=workflow_pb2.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE,
        )
        if failure is not None:
            attrs.failure.CopyFrom(failure)
        if result is not None:
            attrs.last_completion_result.CopyFrom(result)
        continue_as_new(engine, ms, mut, domain, attrs, completed_id)
        return True
    return False


def continue_as_new(
    engine: HistoryEngine,
    ms: Any,
    mut: Any,
    domain: DomainEntry,
    attrs: decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes,
    completed_id: int,
) -> None:
    """Close the run ContinuedAsNew and create its successor in the same transaction."""
    initiator = attrs.initiator or workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
    decider = initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
    req = service_workflow_pb2.StartWorkflowExecutionRequest(
        domain=domain.name,
        workflow_id=ms.workflow_id,
        identity=ms.identity,
        request_id=str(uuid.uuid4()),
        cron_schedule=attrs.cron_schedule or ms.cron_schedule,
        cron_overlap_policy=attrs.cron_overlap_policy or ms.cron_overlap_policy,  # type: ignore[arg-type]
    )
    req.workflow_type.name = attrs.workflow_type.name or ms.workflow_type
    req.task_list.name = attrs.task_list.name or ms.task_list
    req.task_list.kind = 1  # type: ignore[assignment]  # NORMAL
    req.execution_start_to_close_timeout.CopyFrom(
        attrs.execution_start_to_close_timeout
        if core.dur_ns(attrs.execution_start_to_close_timeout) > 0
        else core.dur(ms.execution_timeout)
    )
    req.task_start_to_close_timeout.CopyFrom(
        attrs.task_start_to_close_timeout
        if core.dur_ns(attrs.task_start_to_close_timeout) > 0
        else core.dur(ms.task_timeout)
    )
    previous_started = _started_attributes(ms)
    if decider:
        req.input.CopyFrom(attrs.input)
    else:
        req.input.data = ms.start_input  # a retry or cron run starts with the same input
    if attrs.HasField("retry_policy"):
        req.retry_policy.CopyFrom(attrs.retry_policy)
    elif ms.retry_policy:
        req.retry_policy.MergeFromString(ms.retry_policy)
    if attrs.HasField("memo"):
        req.memo.CopyFrom(attrs.memo)
    elif ms.memo:
        req.memo.MergeFromString(ms.memo)
    if attrs.HasField("search_attributes"):
        req.search_attributes.CopyFrom(attrs.search_attributes)
    elif ms.search_attributes:
        req.search_attributes.MergeFromString(ms.search_attributes)
    if attrs.HasField("header"):
        req.header.CopyFrom(attrs.header)
    elif ms.start_header:
        req.header.MergeFromString(ms.start_header)
    elif previous_started is not None and previous_started.HasField("header"):
        req.header.CopyFrom(previous_started.header)
    backoff = core.dur_ns(attrs.backoff_start_interval)
    jitter = core.dur_ns(attrs.jitter_start)
    if jitter > 0:
        backoff += random.randrange(jitter)
    continued = Continuation(
        first_run_id=ms.first_run_id or ms.run_id,
        initiator=initiator,
        attempt=ms.attempt + 1 if initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY else 0,
        backoff=backoff,
        expiration_time=ms.expiration_time if not decider else 0,
        failure=attrs.failure if attrs.HasField("failure") else None,
        last_completion_result=attrs.last_completion_result
        if attrs.HasField("last_completion_result")
        else None,
        now=mut.now,
    )
    new_ms, create = engine._new_run(
        domain, req, None, CreateMode.CONTINUE_AS_NEW, ms.run_id, continued, parent=ms.parent
    )
    event = history_pb2.WorkflowExecutionContinuedAsNewEventAttributes(
        new_execution_run_id=new_ms.run_id,
        workflow_type=req.workflow_type,
        task_list=req.task_list,
        input=req.input,
        execution_start_to_close_timeout=req.execution_start_to_close_timeout,
        task_start_to_close_timeout=req.task_start_to_close_timeout,
        decision_task_completed_event_id=completed_id,
        backoff_start_interval=core.dur(backoff),
        initiator=initiator,  # type: ignore[arg-type]
    )
    for name in ("failure", "last_completion_result"):
        if attrs.HasField(name):
            getattr(event, name).CopyFrom(getattr(attrs, name))
    for name in ("header", "memo", "search_attributes"):
        if req.HasField(name):
            getattr(event, name).CopyFrom(getattr(req, name))
    event.cron_overlap_policy = req.cron_overlap_policy
    ms.add_event(mut, workflow_execution_continued_as_new_event_attributes=event)
    engine.close_run(ms, mut, CloseStatus.CONTINUED_AS_NEW)
    mut.new_run = (new_ms, create)


def _started_attributes(ms: Any) -> history_pb2.WorkflowExecutionStartedEventAttributes | None:
    """The run's Started event, from the in-memory history (None if not cached)."""
    if not ms.history_complete or not ms.history:
        return None
    first = history_pb2.History.FromString(ms.history[0]).events[0]
    return first.workflow_execution_started_event_attributes
