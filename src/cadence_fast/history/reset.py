"""ResetWorkflowExecution: a new run whose history is the base run's up to a decision, then
DecisionTaskFailed(RESET_WORKFLOW), the signals received after that point (unless skipped)
and a new decision. The current run, if open, is terminated first.

The new run's mutable state is rebuilt by replaying the copied events (`rebuild`), so
everything pending at the reset point (activities, timers, children, ...) is pending again,
and RefreshWorkflowTasks' logic writes the tasks it needs.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import common_pb2, history_pb2, service_workflow_pb2, workflow_pb2

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history.children import child_entry, external_cancel_entry, external_signal_entry
from cadence_fast.history.queues import now_ns
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import CreateMode

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine

EMPTY = core.EMPTY_EVENT_ID
_DECISION_FINISH_KINDS = (
    "decision_task_completed_event_attributes",
    "decision_task_failed_event_attributes",
    "decision_task_timed_out_event_attributes",
)


async def reset(
    engine: HistoryEngine, domain: DomainEntry, request: service_workflow_pb2.ResetWorkflowExecutionRequest
) -> str:
    key = await engine.resolve_run(domain.id, request.workflow_execution)
    base = await engine.load_committed(key)
    events = await engine.read_events(base, 1, base.next_event_id)
    finish = request.decision_finish_event_id
    point = next((e for e in events if e.event_id == finish), None)
    if point is None or point.WhichOneof("attributes") not in _DECISION_FINISH_KINDS:
        raise errors.BadRequestError(
            f"DecisionFinishEventId {finish} is not a DecisionTaskCompleted, Failed or TimedOut event of the run."
        )
    prefix = [e for e in events if e.event_id < finish]
    if not prefix or not prefix[-1].HasField("decision_task_started_event_attributes"):
        raise errors.BadRequestError(
            f"DecisionFinishEventId {finish} does not follow a DecisionTaskStarted event."
        )
    for _ in range(4):
        current = await engine._get_current(domain.id, base.workflow_id)
        if current is not None and request.request_id and current.create_request_id == request.request_id:
            return current.run_id  # a retry of a reset already applied (Go dedups by request id)
        if current is not None and current.state != 2:  # WorkflowState.COMPLETED
            try:
                await engine._terminate(
                    (domain.id, base.workflow_id, current.run_id),
                    request.reason or "reset",
                    b"",
                    "cadence-history",
                )
            except errors.WorkflowExecutionAlreadyCompletedError:
                pass
        ms, mut, history = _new_run(engine, domain, base, events, prefix, request)
        previous = current.run_id if current is not None else ""
        mode = CreateMode.WORKFLOW_ID_REUSE if current is not None else CreateMode.BRAND_NEW
        op = engine.create_op(ms, mut, mode, previous, history)
        shard = engine.shard_for(base.workflow_id)
        try:
            await shard.commit(op)
        except (store_errors.AlreadyExists, store_errors.ConditionFailed):
            continue  # the current run moved meanwhile: look again
        except BaseException as e:
            # Outcome unknown (a cancelled caller's op still commits): the current-run
            # pointer may be stale, read it from the store next time.
            engine.cache.forget_current(domain.id, base.workflow_id)
            raise engine._store_error(shard, e) from None
        ms.set_history([b.data for b in op.history], 1 << 20)
        engine.cache.put_if_absent((domain.id, ms.workflow_id, ms.run_id), ms)
        engine.cache.set_current(domain.id, ms.workflow_id, ms.run_id)
        return str(ms.run_id)
    raise errors.UnavailableError("reset raced with other changes of the workflow; retry")


def _new_run(
    engine: HistoryEngine,
    domain: DomainEntry,
    base: Any,
    events: list[Any],
    prefix: list[Any],
    request: service_workflow_pb2.ResetWorkflowExecutionRequest,
) -> tuple[Any, Any, list[Any]]:
    run_id = str(uuid.uuid4())
    copied = [history_pb2.HistoryEvent.FromString(e.SerializeToString()) for e in prefix]
    ms = rebuild(engine, copied, domain, base.workflow_id, run_id)
    ms.create_request_id = request.request_id or str(uuid.uuid4())
    ms.history_complete = True
    now = now_ns()
    ms.execution_time = now  # the new run's execution timeout counts from the reset
    mut = core.Mutation(now, 0)
    failed = ms.fail_decision(
        mut,
        workflow_pb2.DECISION_TASK_FAILED_CAUSE_RESET_WORKFLOW,
        b"",
        "cadence-history",
        reason=request.reason,
    )
    failed.decision_task_failed_event_attributes.base_run_id = base.run_id
    failed.decision_task_failed_event_attributes.new_run_id = run_id
    failed.decision_task_failed_event_attributes.request_id = request.request_id
    ms.decision_attempt = 0
    # Activities that had started are running for the base run's worker, which can no longer
    # report to this run: fail them now (Go: workflowResetter.failInflightActivity). Those not
    # started stay pending and are dispatched again.
    for schedule_id in sorted(ms.activities):
        a = ms.activities[schedule_id]
        if a.started_id > 0:
            ms.add_event(
                mut,
                activity_task_failed_event_attributes=history_pb2.ActivityTaskFailedEventAttributes(
                    failure=common_pb2.Failure(reason=request.reason or "reset"),
                    scheduled_event_id=schedule_id,
                    started_event_id=a.started_id,
                    identity="cadence-history",
                ),
            )
            ms.delete_activity(mut, schedule_id)
    if not request.skip_signal_reapply:
        for e in events:
            if e.event_id >= request.decision_finish_event_id and e.HasField(
                "workflow_execution_signaled_event_attributes"
            ):
                ms.signal_count += 1
                ms.add_event(
                    mut,
                    workflow_execution_signaled_event_attributes=e.workflow_execution_signaled_event_attributes,
                )
    engine._executors.refresh_tasks(ms, mut)
    engine.schedule_decision(ms, mut)
    return ms, mut, copied + list(mut.events)


def rebuild(
    engine: HistoryEngine, events: list[Any], domain: DomainEntry, workflow_id: str, run_id: str
) -> Any:
    """Mutable state of a run whose history is `events`, replayed from event 1."""
    ms = core.MutableState()
    ms.domain_id = domain.id
    ms.domain_name = domain.name
    ms.workflow_id = workflow_id
    ms.run_id = run_id
    ms.retention = domain.retention_seconds * core.NS
    domains = {d.name: d.id for d in engine.domains.entries()}
    for e in events:
        kind = e.WhichOneof("attributes")
        handler = _REPLAY.get(kind)
        if handler is not None:
            handler(ms, e, getattr(e, kind), domains)
        ms.next_event_id = e.event_id + 1
    return ms


def _started(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    t = core.ts_ns(e.event_time)
    ms.workflow_type = a.workflow_type.name
    ms.task_list = a.task_list.name
    ms.execution_timeout = core.dur_ns(a.execution_start_to_close_timeout)
    ms.task_timeout = core.dur_ns(a.task_start_to_close_timeout)
    ms.start_time = t
    ms.execution_time = t + core.dur_ns(a.first_decision_task_backoff)
    ms.first_run_id = a.first_execution_run_id or ms.run_id
    ms.attempt = a.attempt
    ms.cron_schedule = a.cron_schedule
    ms.cron_overlap_policy = int(a.cron_overlap_policy)
    ms.identity = a.identity
    if a.HasField("memo"):
        ms.memo = a.memo.SerializeToString()
    if a.HasField("search_attributes"):
        ms.search_attributes = a.search_attributes.SerializeToString()
    if a.HasField("retry_policy"):
        ms.retry_policy = a.retry_policy.SerializeToString()
    if a.HasField("expiration_time"):
        ms.expiration_time = core.ts_ns(a.expiration_time)
    if ms.retry_policy or ms.cron_schedule:
        ms.start_input = a.input.data
        ms.start_header = a.header.SerializeToString() if a.HasField("header") else b""
    if a.HasField("parent_execution_info"):
        p = a.parent_execution_info
        ms.parent = (p.domain_id, p.domain_name, p.workflow_execution.workflow_id, p.workflow_execution.run_id,
                     p.initiated_id)  # fmt: skip


def _decision_scheduled(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.decision_schedule_id = e.event_id
    ms.decision_started_id = EMPTY
    ms.decision_attempt = a.attempt
    ms.decision_timeout = core.dur_ns(a.start_to_close_timeout)
    ms.decision_scheduled_time = core.ts_ns(e.event_time)


def _decision_started(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.decision_started_id = e.event_id
    ms.decision_request_id = a.request_id
    ms.decision_started_time = core.ts_ns(e.event_time)


def _decision_completed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.last_processed_event = ms.decision_started_id
    ms.clear_decision()
    ms.decision_attempt = 0


def _decision_failed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.clear_decision()
    ms.decision_attempt += 1


def _activity_scheduled(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    info = core.ActivityInfo()
    t = core.ts_ns(e.event_time)
    info.schedule_id = e.event_id
    info.scheduled_time = info.attempt_scheduled_time = t
    info.activity_id = a.activity_id
    info.activity_type = a.activity_type.name
    info.task_list = a.task_list.name
    info.domain = a.domain or ms.domain_name
    info.input = a.input.data
    info.header = a.header.SerializeToString() if a.HasField("header") else b""
    info.schedule_to_close = core.dur_ns(a.schedule_to_close_timeout)
    info.schedule_to_start = core.dur_ns(a.schedule_to_start_timeout)
    info.start_to_close = core.dur_ns(a.start_to_close_timeout)
    info.heartbeat_timeout = core.dur_ns(a.heartbeat_timeout)
    if a.HasField("retry_policy"):
        from cadence_fast.history import retry

        info.retry_policy = a.retry_policy.SerializeToString()
        info.expiration_time = retry.activity_expiration_time(a.retry_policy, t, info.schedule_to_close)
    ms.activities[info.schedule_id] = info
    ms.activity_ids[info.activity_id] = info.schedule_id


def _activity_started(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    info = ms.activities.get(a.scheduled_event_id)
    if info is not None:
        info.started_id = e.event_id
        info.started_time = core.ts_ns(e.event_time)
        info.attempt = a.attempt
        info.started_identity = a.identity


def _activity_closed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    info = ms.activities.pop(a.scheduled_event_id, None)
    if info is not None:
        ms.activity_ids.pop(info.activity_id, None)


def _activity_cancel_requested(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    sid = ms.activity_ids.get(a.activity_id)
    if sid is not None:
        ms.activities[sid].cancel_requested = True
        ms.activities[sid].cancel_request_id = e.event_id


def _timer_started(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    expiry = core.ts_ns(e.event_time) + core.dur_ns(a.start_to_fire_timeout)
    ms.timers[a.timer_id] = core.TimerInfo(a.timer_id, e.event_id, expiry)


def _timer_closed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.timers.pop(a.timer_id, None)


def _signaled(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.signal_count += 1
    if a.request_id:
        ms.signal_requested.add(a.request_id)


def _cancel_requested(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.cancel_requested = True
    ms.cancel_request_id = a.request_id


def _upsert(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    merged = common_pb2.SearchAttributes.FromString(ms.search_attributes)
    for k, v in a.search_attributes.indexed_fields.items():
        merged.indexed_fields[k].CopyFrom(v)
    ms.search_attributes = merged.SerializeToString(deterministic=True)


def _child_initiated(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.children[e.event_id] = child_entry(
        a, domains.get(a.domain or ms.domain_name, ms.domain_id), ms.identity
    )


def _child_started(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    c = ms.children.get(a.initiated_event_id)
    if c is not None:
        c["run_id"] = a.workflow_execution.run_id
        c["started_id"] = e.event_id


def _child_closed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.children.pop(a.initiated_event_id, None)


def _signal_initiated(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.external_signals[e.event_id] = external_signal_entry(
        a, domains.get(a.domain or ms.domain_name, ms.domain_id)
    )


def _signal_closed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.external_signals.pop(a.initiated_event_id, None)


def _cancel_initiated(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.external_cancels[e.event_id] = external_cancel_entry(
        a, domains.get(a.domain or ms.domain_name, ms.domain_id)
    )


def _cancel_closed(ms: Any, e: Any, a: Any, domains: dict[str, str]) -> None:
    ms.external_cancels.pop(a.initiated_event_id, None)


_REPLAY = {
    "workflow_execution_started_event_attributes": _started,
    "decision_task_scheduled_event_attributes": _decision_scheduled,
    "decision_task_started_event_attributes": _decision_started,
    "decision_task_completed_event_attributes": _decision_completed,
    "decision_task_failed_event_attributes": _decision_failed,
    "decision_task_timed_out_event_attributes": _decision_failed,
    "activity_task_scheduled_event_attributes": _activity_scheduled,
    "activity_task_started_event_attributes": _activity_started,
    "activity_task_completed_event_attributes": _activity_closed,
    "activity_task_failed_event_attributes": _activity_closed,
    "activity_task_timed_out_event_attributes": _activity_closed,
    "activity_task_canceled_event_attributes": _activity_closed,
    "activity_task_cancel_requested_event_attributes": _activity_cancel_requested,
    "timer_started_event_attributes": _timer_started,
    "timer_fired_event_attributes": _timer_closed,
    "timer_canceled_event_attributes": _timer_closed,
    "workflow_execution_signaled_event_attributes": _signaled,
    "workflow_execution_cancel_requested_event_attributes": _cancel_requested,
    "upsert_workflow_search_attributes_event_attributes": _upsert,
    "start_child_workflow_execution_initiated_event_attributes": _child_initiated,
    "child_workflow_execution_started_event_attributes": _child_started,
    "start_child_workflow_execution_failed_event_attributes": _child_closed,
    "child_workflow_execution_completed_event_attributes": _child_closed,
    "child_workflow_execution_failed_event_attributes": _child_closed,
    "child_workflow_execution_canceled_event_attributes": _child_closed,
    "child_workflow_execution_timed_out_event_attributes": _child_closed,
    "child_workflow_execution_terminated_event_attributes": _child_closed,
    "signal_external_workflow_execution_initiated_event_attributes": _signal_initiated,
    "external_workflow_execution_signaled_event_attributes": _signal_closed,
    "signal_external_workflow_execution_failed_event_attributes": _signal_closed,
    "request_cancel_external_workflow_execution_initiated_event_attributes": _cancel_initiated,
    "external_workflow_execution_cancel_requested_event_attributes": _cancel_closed,
    "request_cancel_external_workflow_execution_failed_event_attributes": _cancel_closed,
}
