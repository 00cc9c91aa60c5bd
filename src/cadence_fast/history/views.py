"""Read-side replies: poll responses, DescribeWorkflowExecution, GetWorkflowExecutionHistory."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, cast

from cadence.api.v1 import (
    common_pb2,
    history_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
    workflow_pb2,
)

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import tokens
from cadence_fast.persistence.records import WorkflowState

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine

EMPTY = core.EMPTY_EVENT_ID
NS = core.NS


def _task_list(name: str) -> tasklist_pb2.TaskList:
    return tasklist_pb2.TaskList(name=name, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _SplicedHistory:
    """A response whose `history` field stays the stored event bytes.

    Parsing every event and encoding it again costs in proportion to the history, on
    every decision poll (perf-findings F1). Instead the response is encoded without its
    history and the stored bytes are appended as the history field on the wire: protobuf
    allows a length-delimited field anywhere, so the receiver sees the same message. gRPC
    calls `SerializeToString` through the serializer api.base registers for the RPC
    (`encoded_responses`). Other fields read through to the message (`head`); reading
    `history` parses the events into it once, and from then on `head` is the whole response.
    """

    __slots__ = ("head", "_history")
    #: The history field's tag byte (field number << 3 | wire type 2).
    _TAG = b""

    def __init__(self, head: Any, history: bytes) -> None:
        self.head = head
        self._history: bytes | None = history

    @property
    def history(self) -> history_pb2.History:
        if self._history is not None:
            self.head.history.MergeFromString(self._history)
            self._history = None
        return self.head.history  # type: ignore[no-any-return]

    def HasField(self, name: str) -> bool:  # noqa: N802 - the protobuf method name
        if name == "history" and self._history:
            return True
        return self.head.HasField(name)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.head, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SplicedHistory.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.head, name, value)

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf method name
        data: bytes = self.head.SerializeToString()
        if self._history:
            return data + self._TAG + _varint(len(self._history)) + self._history
        return data


class DecisionTaskResponse(_SplicedHistory):
    """PollForDecisionTaskResponse; history is field 8."""

    __slots__ = ()
    _TAG = b"\x42"


class HistoryPageResponse(_SplicedHistory):
    """GetWorkflowExecutionHistoryResponse; history is field 1."""

    __slots__ = ()
    _TAG = b"\x0a"


def decision_task_response(ms: Any, history: bytes, backlog_hint: int) -> DecisionTaskResponse:
    token = tokens.TaskToken(
        tokens.KIND_DECISION,
        ms.domain_id,
        ms.workflow_id,
        ms.run_id,
        ms.decision_schedule_id,
        ms.decision_attempt,
    )
    # Sub-messages are filled in place: building each one and passing it as a keyword
    # (which copies it) cost twice as much, on every poll reply.
    head = service_worker_pb2.PollForDecisionTaskResponse(
        task_token=token.encode(),
        started_event_id=ms.decision_started_id,
        attempt=ms.decision_attempt,
        backlog_count_hint=backlog_hint,
        next_event_id=ms.next_event_id,
        total_history_bytes=len(history),
    )
    execution = head.workflow_execution
    execution.workflow_id = ms.workflow_id
    execution.run_id = ms.run_id
    head.workflow_type.name = ms.workflow_type
    head.previous_started_event_id.value = ms.last_processed_event
    task_list = head.workflow_execution_task_list
    task_list.name = ms.task_list
    task_list.kind = tasklist_pb2.TASK_LIST_KIND_NORMAL
    _set_ts(head.scheduled_time, ms.decision_scheduled_time)
    _set_ts(head.started_time, ms.decision_started_time)
    return DecisionTaskResponse(head, history)


def _set_ts(t: Any, ns: int) -> None:
    """Fill a Timestamp (or Duration) field in place from int nanoseconds (as core.ts/core.dur)."""
    t.seconds = ns // NS
    t.nanos = ns % NS


def activity_task_response(ms: Any, a: Any) -> service_worker_pb2.PollForActivityTaskResponse:
    token = tokens.TaskToken(
        tokens.KIND_ACTIVITY, ms.domain_id, ms.workflow_id, ms.run_id, a.schedule_id, a.attempt, a.activity_id
    )
    resp = service_worker_pb2.PollForActivityTaskResponse(
        task_token=token.encode(),
        activity_id=a.activity_id,
        attempt=a.attempt,
        workflow_domain=ms.domain_name,
    )
    execution = resp.workflow_execution
    execution.workflow_id = ms.workflow_id
    execution.run_id = ms.run_id
    resp.activity_type.name = a.activity_type
    resp.input.data = a.input
    _set_ts(resp.scheduled_time, a.scheduled_time)
    _set_ts(resp.started_time, a.started_time)
    _set_ts(resp.schedule_to_close_timeout, a.schedule_to_close)
    _set_ts(resp.start_to_close_timeout, a.start_to_close)
    _set_ts(resp.heartbeat_timeout, a.heartbeat_timeout)
    _set_ts(resp.scheduled_time_of_this_attempt, a.attempt_scheduled_time or a.scheduled_time)
    resp.workflow_type.name = ms.workflow_type
    if a.details:
        resp.heartbeat_details.data = a.details
    if a.header:
        resp.header.MergeFromString(a.header)
    return resp


def describe(ms: Any) -> service_workflow_pb2.DescribeWorkflowExecutionResponse:
    resp = service_workflow_pb2.DescribeWorkflowExecutionResponse()
    cfg = resp.execution_configuration
    cfg.task_list.CopyFrom(_task_list(ms.task_list))
    cfg.execution_start_to_close_timeout.CopyFrom(core.dur(ms.execution_timeout))
    cfg.task_start_to_close_timeout.CopyFrom(core.dur(ms.task_timeout))
    info = resp.workflow_execution_info
    info.workflow_execution.workflow_id = ms.workflow_id
    info.workflow_execution.run_id = ms.run_id
    info.type.name = ms.workflow_type
    info.start_time.CopyFrom(core.ts(ms.start_time))
    info.execution_time.CopyFrom(core.ts(ms.execution_time or ms.start_time))
    info.history_length = ms.next_event_id - 1
    info.task_list = ms.task_list
    info.task_list_info.CopyFrom(_task_list(ms.task_list))
    info.is_cron = bool(ms.cron_schedule)
    info.cron_schedule = ms.cron_schedule
    if ms.last_update_time:
        info.update_time.CopyFrom(core.ts(ms.last_update_time))
    if ms.memo:
        info.memo.MergeFromString(ms.memo)
    if ms.search_attributes:
        info.search_attributes.MergeFromString(ms.search_attributes)
    if ms.state == WorkflowState.COMPLETED:
        info.close_time.CopyFrom(core.ts(ms.close_time))
        info.close_status = ms.close_status
        info.execution_status = ms.close_status + 2  # CLOSE_STATUS_COMPLETED(1) -> STATUS_COMPLETED(3) ...
    else:
        started = ms.last_processed_event != EMPTY or ms.decision_started_id != EMPTY
        info.execution_status = (
            workflow_pb2.WORKFLOW_EXECUTION_STATUS_STARTED
            if started
            else workflow_pb2.WORKFLOW_EXECUTION_STATUS_PENDING
        )
    for a in sorted(ms.activities.values(), key=lambda a: a.schedule_id):
        p = resp.pending_activities.add(
            activity_id=a.activity_id,
            activity_type=common_pb2.ActivityType(name=a.activity_type),
            attempt=a.attempt,
            scheduled_time=core.ts(a.attempt_scheduled_time or a.scheduled_time),
            schedule_id=a.schedule_id,
        )
        if a.cancel_requested:
            p.state = workflow_pb2.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
        elif a.started_id != EMPTY:
            p.state = workflow_pb2.PENDING_ACTIVITY_STATE_STARTED
        else:
            p.state = workflow_pb2.PENDING_ACTIVITY_STATE_SCHEDULED
        if a.details:
            p.heartbeat_details.data = a.details
        if a.last_heartbeat_time:
            p.last_heartbeat_time.CopyFrom(core.ts(a.last_heartbeat_time))
        if a.started_time:
            p.last_started_time.CopyFrom(core.ts(a.started_time))
            p.started_worker_identity = a.started_identity
        if a.expiration_time:
            p.expiration_time.CopyFrom(core.ts(a.expiration_time))
        if a.last_failure_reason:
            p.last_failure.reason = a.last_failure_reason
            p.last_failure.details = a.last_failure_details
        p.last_worker_identity = a.last_worker_identity or a.started_identity
        if a.retry_policy:
            p.maximum_attempts = common_pb2.RetryPolicy.FromString(a.retry_policy).maximum_attempts
    for iid in sorted(ms.children):
        c = ms.children[iid]
        resp.pending_children.add(
            workflow_execution=common_pb2.WorkflowExecution(workflow_id=c["workflow_id"], run_id=c["run_id"]),
            workflow_type_name=c["workflow_type"],
            initiated_id=iid,
            parent_close_policy=c["policy"],
            domain=c["domain"],
        )
    if ms.parent is not None:
        p_domain_id, p_domain_name, p_workflow_id, p_run_id, initiated_id = ms.parent
        pe = info.parent_execution_info
        pe.domain_id, pe.domain_name, pe.initiated_id = p_domain_id, p_domain_name, initiated_id
        pe.workflow_execution.workflow_id, pe.workflow_execution.run_id = p_workflow_id, p_run_id
    if ms.is_open() and ms.decision_schedule_id != EMPTY:
        d = resp.pending_decision
        d.state = (
            workflow_pb2.PENDING_DECISION_STATE_STARTED
            if ms.decision_started_id != EMPTY
            else workflow_pb2.PENDING_DECISION_STATE_SCHEDULED
        )
        d.scheduled_time.CopyFrom(core.ts(ms.decision_scheduled_time))
        if ms.decision_started_time:
            d.started_time.CopyFrom(core.ts(ms.decision_started_time))
        d.attempt = ms.decision_attempt
        d.original_scheduled_time.CopyFrom(
            core.ts(ms.decision_original_scheduled_time or ms.decision_scheduled_time)
        )
        d.schedule_id = ms.decision_schedule_id
    return resp


def _encode_page_token(run_id: str, next_event_id: int) -> bytes:
    return json.dumps({"r": run_id, "n": next_event_id}, separators=(",", ":")).encode()


def _decode_page_token(data: bytes) -> tuple[str, int]:
    try:
        value = json.loads(data)
        return str(value["r"]), int(value["n"])
    except (ValueError, KeyError, TypeError):
        raise errors.BadRequestError("next_page_token is malformed.") from None


async def get_history(
    engine: HistoryEngine,
    domain: DomainEntry,
    request: service_workflow_pb2.GetWorkflowExecutionHistoryRequest,
    timeout: float,  # noqa: ASYNC109
) -> service_workflow_pb2.GetWorkflowExecutionHistoryResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    first = 1
    if request.next_page_token:
        run_id, first = _decode_page_token(request.next_page_token)
        key = (domain.id, request.workflow_execution.workflow_id, run_id)
    else:
        key = await engine.resolve_run(domain.id, request.workflow_execution)
    resp = service_workflow_pb2.GetWorkflowExecutionHistoryResponse()

    if request.history_event_filter_type == history_pb2.EVENT_FILTER_TYPE_CLOSE_EVENT:
        while True:
            ms = await engine.load_committed(key)
            if not ms.is_open():
                events = await engine.read_events(ms, ms.close_event_id, ms.close_event_id + 1)
                resp.history.events.extend(events)
                return resp
            remaining = deadline - loop.time()
            if not request.wait_for_new_event or remaining <= 0:
                return resp
            await engine.wait_for_change(key, remaining)

    while True:
        ms = await engine.load_committed(key)
        remaining = deadline - loop.time()
        if (
            request.wait_for_new_event
            and request.next_page_token
            and first >= ms.next_event_id
            and ms.is_open()
            and remaining > 0
        ):
            await engine.wait_for_change(key, remaining)
            continue
        break
    # Captured before reading: a transition may move the shared state while the read awaits,
    # and the token must continue right after the last event actually returned.
    next_event_id, is_open = ms.next_event_id, ms.is_open()
    page_size = request.page_size
    if first == 1 and ms.history_complete and (page_size <= 0 or page_size >= next_event_id - 1):
        # The whole history, cached in memory: its stored bytes, spliced (see _SplicedHistory).
        history = b"".join(ms.history)
        if request.wait_for_new_event and is_open:
            resp.next_page_token = _encode_page_token(key[2], next_event_id if history else first)
        # A stand-in with the response's fields and encoding (WorkflowAPI registers the
        # RPC with a serializer that calls SerializeToString).
        return cast(
            service_workflow_pb2.GetWorkflowExecutionHistoryResponse, HistoryPageResponse(resp, history)
        )
    events = await engine.read_events(ms, first, next_event_id)
    if page_size > 0 and len(events) > page_size:
        events = events[:page_size]
        resp.next_page_token = _encode_page_token(key[2], events[-1].event_id + 1)
    elif request.wait_for_new_event and is_open:
        resp.next_page_token = _encode_page_token(key[2], events[-1].event_id + 1 if events else first)
    resp.history.events.extend(events)
    return resp
