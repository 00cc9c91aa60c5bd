"""RespondDecisionTaskCompleted: validate and apply the decider's decisions (client-contract §4).

Outputs are appended right after DecisionTaskCompleted, in decision order; async side
effects of the same transaction (an activity cancelled before it started) come after
them, then the events buffered while the decision was started. A bad decision raises
DecisionFailed: the engine then reloads the run and writes DecisionTaskFailed instead,
so nothing of the bad batch is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import common_pb2, decision_pb2, history_pb2, service_worker_pb2, workflow_pb2

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import codec, continuation, cron, retry, tokens
from cadence_fast.history.errors import DecisionFailed
from cadence_fast.matching.task import MatchTask
from cadence_fast.persistence.records import CloseStatus, TaskListType
from cadence_fast.visibility.search_attributes import decode_search_attributes

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine

NS = core.NS
EMPTY = core.EMPTY_EVENT_ID
#: started_id of an activity with a retry policy whose Started event waits for the outcome
STARTED_NO_EVENT = -1

C = workflow_pb2  # decision failure causes and timeout types
#: Cadence's default history limits (events, bytes): past them a run is terminated.
HISTORY_COUNT_LIMIT = 200_000
HISTORY_SIZE_LIMIT = 200 * 1024 * 1024

_COMPLETION_KINDS = frozenset(
    (
        "complete_workflow_execution_decision_attributes",
        "fail_workflow_execution_decision_attributes",
        "cancel_workflow_execution_decision_attributes",
        "continue_as_new_workflow_execution_decision_attributes",
    )
)


class DecisionHandler:
    def __init__(self, engine: HistoryEngine) -> None:
        self.engine = engine

    # --- RespondDecisionTaskCompleted ------------------------------------------------------

    def complete(
        self,
        ms: Any,
        mut: Any,
        token: tokens.TaskToken,
        request: service_worker_pb2.RespondDecisionTaskCompletedRequest,
        domain: DomainEntry,
    ) -> None:
        self.engine._check_decision_token(ms, token)
        if self.engine.is_transient_decision(ms):
            # the transient decision made it: its Scheduled/Started events go to history now
            for event in self.engine.transient_decision_events(ms):
                kind = event.WhichOneof("attributes")
                written = ms.add_event(mut, **{kind: getattr(event, kind)})
                written.event_time.CopyFrom(event.event_time)
            ms.decision_started_id = ms.next_event_id - 1
        completed = ms.complete_decision(mut, request.identity, request.binary_checksum)
        sticky = request.sticky_attributes
        if request.HasField("sticky_attributes") and sticky.worker_task_list.name:
            ms.sticky_task_list = sticky.worker_task_list.name
            ms.sticky_schedule_to_start = core.dur_ns(sticky.schedule_to_start_timeout)
        else:
            ms.clear_stickiness()
        ctx = _Context(ms, mut, completed.event_id, request.identity, domain)
        for d in request.decisions:
            if not ms.is_open():
                break  # decisions after a completion decision are ignored, as Go Cadence does
            kind = d.WhichOneof("attributes")
            if kind in _COMPLETION_KINDS and ms.buffered:
                # Events arrived while the decider worked: it must see them before closing the
                # run (Go: hasUnhandledEventsBeforeDecisions, re-evaluated after a CancelTimer
                # that dropped a buffered firing).
                raise DecisionFailed(
                    C.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION,
                    "cannot complete workflow, new pending decisions were scheduled while this decision was "
                    "processing",
                )
            if kind is None:
                raise DecisionFailed(
                    C.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION, "Decision attributes not set."
                )
            handler = self._handlers.get(kind)
            if handler is None:
                raise DecisionFailed(
                    C.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION, f"Decision {kind} is not supported."
                )
            handler(self, ctx, getattr(d, kind))
        for side_effect in ctx.side_effects:
            side_effect()
        if not ms.is_open():
            return
        if ms.next_event_id - 1 > HISTORY_COUNT_LIMIT or ms.history_size > HISTORY_SIZE_LIMIT:
            # Cadence's history limits: a run past them is terminated rather than growing forever.
            ms.flush_buffered(mut)
            ms.add_event(
                mut,
                workflow_execution_terminated_event_attributes=history_pb2.WorkflowExecutionTerminatedEventAttributes(
                    reason="Workflow history size / count exceeds limit.", identity="cadence-history"
                ),
            )
            self.engine.close_run(ms, mut, CloseStatus.TERMINATED)
            return
        flushed = ms.flush_buffered(mut)
        if flushed or ctx.side_effects or request.force_create_new_decision_task:
            self.engine.schedule_decision(ms, mut)

    # --- handlers ----------------------------------------------------------------------

    def _schedule_activity(
        self, ctx: _Context, attrs: decision_pb2.ScheduleActivityTaskDecisionAttributes
    ) -> None:
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
        ms, mut = ctx.ms, ctx.mut
        if not attrs.activity_id:
            raise DecisionFailed(bad, "ActivityId is not set on decision.")
        if not attrs.activity_type.name:
            raise DecisionFailed(bad, "ActivityType is not set on decision.")
        if attrs.domain and attrs.domain != ms.domain_name:
            raise DecisionFailed(bad, f"Activity domain {attrs.domain!r} is not the workflow's domain.")
        if attrs.activity_id in ms.activity_ids:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID,
                f"Activity with id {attrs.activity_id!r} is already pending.",
            )
        s2c = core.dur_ns(attrs.schedule_to_close_timeout)
        s2s = core.dur_ns(attrs.schedule_to_start_timeout)
        stc = core.dur_ns(attrs.start_to_close_timeout)
        hb = core.dur_ns(attrs.heartbeat_timeout)
        if min(s2c, s2s, stc, hb) < 0:
            raise DecisionFailed(bad, "A valid timeout may not be negative.")
        wf = ms.execution_timeout
        if wf > 0:
            s2c, s2s, stc, hb = (min(v, wf) for v in (s2c, s2s, stc, hb))
        if s2c > 0:
            s2s = s2s or s2c
            stc = stc or s2c
        elif s2s > 0 and stc > 0:
            s2c = s2s + stc
            if wf > 0:
                s2c = min(s2c, wf)
        else:
            raise DecisionFailed(bad, "A valid ScheduleToCloseTimeout is not set on decision.")
        if attrs.HasField("retry_policy"):
            # Go: schedule-to-start and schedule-to-close last at least as long as the retries may
            # (the policy's expiration, else the workflow's timeout), so a retried activity stays queued.
            expiration = core.dur_ns(attrs.retry_policy.expiration_interval) or wf
            s2s = max(s2s, expiration)
            s2c = max(s2c, expiration)
        task_list = attrs.task_list.name or ms.task_list
        # The event's attributes are filled in place (perf-findings F7: building them as
        # keyword messages and copying them into the event cost twice as much).
        event = ms.new_event(mut)
        event_attrs = event.activity_task_scheduled_event_attributes
        event_attrs.activity_id = attrs.activity_id
        event_attrs.activity_type.CopyFrom(attrs.activity_type)
        event_attrs.domain = ms.domain_name
        event_attrs.task_list.CopyFrom(attrs.task_list)
        event_attrs.task_list.name = task_list
        event_attrs.input.CopyFrom(attrs.input)
        _set_duration(event_attrs.schedule_to_close_timeout, s2c)
        _set_duration(event_attrs.schedule_to_start_timeout, s2s)
        _set_duration(event_attrs.start_to_close_timeout, stc)
        _set_duration(event_attrs.heartbeat_timeout, hb)
        event_attrs.decision_task_completed_event_id = ctx.completed_id
        if attrs.HasField("retry_policy"):
            event_attrs.retry_policy.CopyFrom(attrs.retry_policy)
        if attrs.HasField("header"):
            event_attrs.header.CopyFrom(attrs.header)
        a = core.ActivityInfo()
        a.schedule_id = event.event_id
        a.scheduled_time = mut.now
        a.attempt_scheduled_time = mut.now
        a.activity_id = attrs.activity_id
        a.activity_type = attrs.activity_type.name
        a.task_list = task_list
        a.domain = ms.domain_name
        a.input = attrs.input.data
        a.header = attrs.header.SerializeToString() if attrs.HasField("header") else b""
        a.schedule_to_close = s2c
        a.schedule_to_start = s2s
        a.start_to_close = stc
        a.heartbeat_timeout = hb
        if attrs.HasField("retry_policy"):
            a.retry_policy = attrs.retry_policy.SerializeToString()
            a.expiration_time = retry.activity_expiration_time(attrs.retry_policy, mut.now, s2c)
        ms.add_activity(mut, a)
        self.schedule_activity_attempt(ms, mut, a)

    def _request_cancel_activity(
        self, ctx: _Context, attrs: decision_pb2.RequestCancelActivityTaskDecisionAttributes
    ) -> None:
        ms, mut = ctx.ms, ctx.mut
        if not attrs.activity_id:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES,
                "ActivityId is not set on decision.",
            )
        schedule_id = ms.activity_ids.get(attrs.activity_id)
        a = ms.activities.get(schedule_id) if schedule_id is not None else None
        if a is None:
            ms.add_event(
                mut,
                request_cancel_activity_task_failed_event_attributes=(
                    history_pb2.RequestCancelActivityTaskFailedEventAttributes(
                        activity_id=attrs.activity_id, cause="ACTIVITY_ID_UNKNOWN",
                        decision_task_completed_event_id=ctx.completed_id,
                    )
                ),
            )  # fmt: skip
            return
        event = ms.add_event(
            mut,
            activity_task_cancel_requested_event_attributes=history_pb2.ActivityTaskCancelRequestedEventAttributes(
                activity_id=attrs.activity_id, decision_task_completed_event_id=ctx.completed_id
            ),
        )
        a.cancel_requested = True
        a.cancel_request_id = event.event_id
        ms.touch_activity(mut, a)
        if a.started_id == EMPTY:
            # Never started: cancelled at once, after this decision's outputs (client-contract §4a).
            def cancel(a: Any = a, requested_id: int = event.event_id) -> None:
                canceled = history_pb2.ActivityTaskCanceledEventAttributes(
                    latest_cancel_requested_event_id=requested_id, scheduled_event_id=a.schedule_id,
                    started_event_id=EMPTY, identity=ctx.identity,
                )  # fmt: skip
                ms.add_event(mut, activity_task_canceled_event_attributes=canceled)
                ms.delete_activity(mut, a.schedule_id)

            ctx.side_effects.append(cancel)

    def _start_timer(self, ctx: _Context, attrs: decision_pb2.StartTimerDecisionAttributes) -> None:
        ms, mut = ctx.ms, ctx.mut
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES
        if not attrs.timer_id:
            raise DecisionFailed(bad, "TimerId is not set on decision.")
        fire = core.dur_ns(attrs.start_to_fire_timeout)
        if fire <= 0:
            raise DecisionFailed(bad, "A valid StartToFireTimeout is not set on decision.")
        if attrs.timer_id in ms.timers:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID,
                f"Timer with id {attrs.timer_id!r} is pending.",
            )
        event = ms.add_event(
            mut,
            timer_started_event_attributes=history_pb2.TimerStartedEventAttributes(
                timer_id=attrs.timer_id, start_to_fire_timeout=attrs.start_to_fire_timeout,
                decision_task_completed_event_id=ctx.completed_id,
            ),
        )  # fmt: skip
        expiry = mut.now + fire
        ms.add_timer(mut, core.TimerInfo(attrs.timer_id, event.event_id, expiry))
        mut.timers.append((expiry, codec.TIMER_USER, codec.pack(attrs.timer_id, event.event_id)))

    def _cancel_timer(self, ctx: _Context, attrs: decision_pb2.CancelTimerDecisionAttributes) -> None:
        ms, mut = ctx.ms, ctx.mut
        if not attrs.timer_id:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_BAD_CANCEL_TIMER_ATTRIBUTES, "TimerId is not set on decision."
            )
        t = ms.timers.get(attrs.timer_id)
        started_id = t.started_id if t is not None else None
        if t is None:
            # Fired while the decision was started: drop the buffered TimerFired, as Cadence does.
            for key, e in ms.buffered:
                if e.WhichOneof("attributes") == "timer_fired_event_attributes" and (
                    e.timer_fired_event_attributes.timer_id == attrs.timer_id
                ):
                    started_id = e.timer_fired_event_attributes.started_event_id
                    ms.drop_buffered(mut, key)
                    break
        if started_id is None:
            ms.add_event(
                mut,
                cancel_timer_failed_event_attributes=history_pb2.CancelTimerFailedEventAttributes(
                    timer_id=attrs.timer_id, cause="TIMER_ID_UNKNOWN", decision_task_completed_event_id=ctx.completed_id,
                    identity=ctx.identity,
                ),
            )  # fmt: skip
            return
        if t is not None:
            ms.delete_timer(mut, attrs.timer_id)
        ms.add_event(
            mut,
            timer_canceled_event_attributes=history_pb2.TimerCanceledEventAttributes(
                timer_id=attrs.timer_id, started_event_id=started_id, decision_task_completed_event_id=ctx.completed_id,
                identity=ctx.identity,
            ),
        )  # fmt: skip

    def _record_marker(self, ctx: _Context, attrs: decision_pb2.RecordMarkerDecisionAttributes) -> None:
        if not attrs.marker_name:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_BAD_RECORD_MARKER_ATTRIBUTES,
                "MarkerName is not set on decision.",
            )
        event_attrs = history_pb2.MarkerRecordedEventAttributes(
            marker_name=attrs.marker_name,
            details=attrs.details,
            decision_task_completed_event_id=ctx.completed_id,
        )
        if attrs.HasField("header"):
            event_attrs.header.CopyFrom(attrs.header)
        ctx.ms.add_event(ctx.mut, marker_recorded_event_attributes=event_attrs)

    def _upsert_search_attributes(
        self, ctx: _Context, attrs: decision_pb2.UpsertWorkflowSearchAttributesDecisionAttributes
    ) -> None:
        ms, mut = ctx.ms, ctx.mut
        if not attrs.HasField("search_attributes") or not attrs.search_attributes.indexed_fields:
            raise DecisionFailed(
                C.DECISION_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES, "SearchAttributes is not set on decision."
            )
        try:
            decode_search_attributes(attrs.search_attributes, self.engine.search_attributes)
        except errors.BadRequestError as e:
            raise DecisionFailed(C.DECISION_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES, e.message) from None
        merged = common_pb2.SearchAttributes.FromString(ms.search_attributes)
        for key, value in attrs.search_attributes.indexed_fields.items():
            merged.indexed_fields[key].CopyFrom(value)
        ms.search_attributes = merged.SerializeToString(deterministic=True)
        ms.add_event(
            mut,
            upsert_workflow_search_attributes_event_attributes=(
                history_pb2.UpsertWorkflowSearchAttributesEventAttributes(
                    decision_task_completed_event_id=ctx.completed_id,
                    search_attributes=attrs.search_attributes,
                )
            ),
        )
        mut.visibility = True

    def _complete_workflow(
        self, ctx: _Context, attrs: decision_pb2.CompleteWorkflowExecutionDecisionAttributes
    ) -> None:
        closed = history_pb2.WorkflowExecutionCompletedEventAttributes(
            result=attrs.result, decision_task_completed_event_id=ctx.completed_id
        )
        self._close_workflow(ctx, CloseStatus.COMPLETED, "workflow_execution_completed_event_attributes", closed,
                             result=attrs.result)  # fmt: skip

    def _fail_workflow(
        self, ctx: _Context, attrs: decision_pb2.FailWorkflowExecutionDecisionAttributes
    ) -> None:
        closed = history_pb2.WorkflowExecutionFailedEventAttributes(
            failure=attrs.failure, decision_task_completed_event_id=ctx.completed_id
        )
        self._close_workflow(ctx, CloseStatus.FAILED, "workflow_execution_failed_event_attributes", closed,
                             failure=attrs.failure)  # fmt: skip

    def _close_workflow(self, ctx: _Context, status: int, field: str, closed: Any, **outcome: Any) -> None:
        """Close the run as a Complete/Fail decision says, unless its retry policy or cron
        schedule continues it as a new run instead (then the close event is not written)."""
        if continuation.close_or_continue(
            self.engine, ctx.ms, ctx.mut, ctx.domain, status, ctx.completed_id, **outcome
        ):
            return
        ctx.ms.add_event(ctx.mut, **{field: closed})
        self.engine.close_run(ctx.ms, ctx.mut, status)

    def _continue_as_new(
        self, ctx: _Context, attrs: decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes
    ) -> None:
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_CONTINUE_AS_NEW_ATTRIBUTES
        for name in (
            "execution_start_to_close_timeout",
            "task_start_to_close_timeout",
            "backoff_start_interval",
        ):
            if core.dur_ns(getattr(attrs, name)) < 0:
                raise DecisionFailed(bad, f"A valid {name} may not be negative.")
        if attrs.cron_schedule:
            try:
                cron.parse_cron(attrs.cron_schedule)
            except cron.CronError as e:
                raise DecisionFailed(bad, str(e)) from None
        if attrs.initiator not in (0, C.CONTINUE_AS_NEW_INITIATOR_DECIDER):
            raise DecisionFailed(bad, "Only the DECIDER initiator may be set on a ContinueAsNew decision.")
        continuation.continue_as_new(self.engine, ctx.ms, ctx.mut, ctx.domain, attrs, ctx.completed_id)

    def _cancel_workflow(
        self, ctx: _Context, attrs: decision_pb2.CancelWorkflowExecutionDecisionAttributes
    ) -> None:
        ctx.ms.add_event(
            ctx.mut,
            workflow_execution_canceled_event_attributes=history_pb2.WorkflowExecutionCanceledEventAttributes(
                decision_task_completed_event_id=ctx.completed_id, details=attrs.details
            ),
        )
        self.engine.close_run(ctx.ms, ctx.mut, CloseStatus.CANCELED)

    def _start_child(self, ctx: _Context, attrs: Any) -> None:
        self.engine._children.start_child(ctx, attrs)

    def _signal_external(self, ctx: _Context, attrs: Any) -> None:
        self.engine._children.signal_external(ctx, attrs)

    def _request_cancel_external(self, ctx: _Context, attrs: Any) -> None:
        self.engine._children.request_cancel_external(ctx, attrs)

    _handlers: dict[str, Callable[[DecisionHandler, _Context, Any], None]] = {
        "schedule_activity_task_decision_attributes": _schedule_activity,
        "request_cancel_activity_task_decision_attributes": _request_cancel_activity,
        "start_timer_decision_attributes": _start_timer,
        "cancel_timer_decision_attributes": _cancel_timer,
        "record_marker_decision_attributes": _record_marker,
        "upsert_workflow_search_attributes_decision_attributes": _upsert_search_attributes,
        "complete_workflow_execution_decision_attributes": _complete_workflow,
        "fail_workflow_execution_decision_attributes": _fail_workflow,
        "cancel_workflow_execution_decision_attributes": _cancel_workflow,
        "continue_as_new_workflow_execution_decision_attributes": _continue_as_new,
        "start_child_workflow_execution_decision_attributes": _start_child,
        "signal_external_workflow_execution_decision_attributes": _signal_external,
        "request_cancel_external_workflow_execution_decision_attributes": _request_cancel_external,
    }

    # --- activity attempts, timers, retries ---------------------------------------------

    def schedule_activity_attempt(self, ms: Any, mut: Any, a: Any) -> None:
        """Dispatch one attempt: its transfer task and its schedule-to-start/close timers."""
        now = a.attempt_scheduled_time or mut.now
        mut.transfer.append((codec.TRANSFER_ACTIVITY, codec.pack(a.schedule_id, a.attempt)))
        if a.schedule_to_start > 0 and a.schedule_to_start < a.schedule_to_close:
            mut.timers.append((
                now + a.schedule_to_start, codec.TIMER_ACTIVITY_TIMEOUT,
                codec.pack(a.schedule_id, C.TIMEOUT_TYPE_SCHEDULE_TO_START, a.attempt),
            ))  # fmt: skip
        if a.schedule_to_close > 0:
            mut.timers.append((
                now + a.schedule_to_close, codec.TIMER_ACTIVITY_TIMEOUT,
                codec.pack(a.schedule_id, C.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, a.attempt),
            ))  # fmt: skip

    def activity_start_timers(self, ms: Any, mut: Any, a: Any) -> None:
        if a.start_to_close > 0:
            mut.timers.append((
                mut.now + a.start_to_close, codec.TIMER_ACTIVITY_TIMEOUT,
                codec.pack(a.schedule_id, C.TIMEOUT_TYPE_START_TO_CLOSE, a.attempt),
            ))  # fmt: skip
        if a.heartbeat_timeout > 0 and a.heartbeat_timeout < a.start_to_close:
            mut.timers.append((
                mut.now + a.heartbeat_timeout, codec.TIMER_ACTIVITY_TIMEOUT,
                codec.pack(a.schedule_id, C.TIMEOUT_TYPE_HEARTBEAT, a.attempt),
            ))  # fmt: skip

    def retry_activity(self, ms: Any, mut: Any, a: Any, reason: str, details: bytes) -> bool:
        """Schedule the next attempt if the retry policy allows it (no event is written)."""
        if not a.retry_policy or a.cancel_requested:  # Go never retries an activity asked to cancel
            return False
        backoff = retry.next_retry_delay(
            a.retry_policy, a.attempt, reason, now=mut.now, expiration_time=a.expiration_time
        )
        if backoff is None:
            return False
        next_time = mut.now + backoff
        a.attempt += 1
        a.started_id = EMPTY
        a.started_time = 0
        a.request_id = ""
        a.last_failure_reason = reason
        a.last_failure_details = details
        a.attempt_scheduled_time = next_time
        ms.touch_activity(mut, a)
        mut.timers.append((next_time, codec.TIMER_ACTIVITY_RETRY, codec.pack(a.schedule_id, a.attempt)))
        return True

    def write_deferred_started(self, ms: Any, mut: Any, a: Any) -> None:
        """An activity with a retry policy gets its Started event with its final outcome."""
        if a.started_id != STARTED_NO_EVENT:
            return
        attrs = history_pb2.ActivityTaskStartedEventAttributes(
            scheduled_event_id=a.schedule_id,
            identity=a.started_identity,
            request_id=a.request_id,
            attempt=a.attempt,
        )
        if a.last_failure_reason:
            attrs.last_failure.reason = a.last_failure_reason
            attrs.last_failure.details = a.last_failure_details
        event = ms.add_async_event(mut, activity_task_started_event_attributes=attrs)
        a.started_id = event.event_id


def _set_duration(d: Any, ns: int) -> None:
    """A Duration field set in place to int nanoseconds (as core.dur builds it)."""
    d.seconds = ns // NS
    d.nanos = ns % NS


class _Context:
    """One RespondDecisionTaskCompleted being applied."""

    __slots__ = ("ms", "mut", "completed_id", "identity", "domain", "side_effects")

    def __init__(self, ms: Any, mut: Any, completed_id: int, identity: str, domain: DomainEntry) -> None:
        self.ms = ms
        self.mut = mut
        self.completed_id = completed_id
        self.identity = identity
        self.domain = domain
        self.side_effects: list[Callable[[], None]] = []


def activity_match_task(ms: Any, a: Any, now: int) -> MatchTask:
    expiry = 0
    if a.schedule_to_start > 0:
        expiry = (a.attempt_scheduled_time or a.scheduled_time) + a.schedule_to_start
    return MatchTask(
        domain_id=ms.domain_id,
        workflow_id=ms.workflow_id,
        run_id=ms.run_id,
        scheduled_event_id=a.schedule_id,
        task_list=a.task_list,
        task_type=TaskListType.ACTIVITY,
        schedule_attempt=a.attempt,
        created_time=now,
        expiry_time=expiry,
    )
