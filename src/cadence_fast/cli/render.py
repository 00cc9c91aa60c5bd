"""How the workflow commands show Cadence messages to a person: times, payloads, history events.

Kept apart from the commands so `workflow show`, `observe` and `run` render events the same way.
Everything here is pure (message in, text out). Protobuf is imported where a message is read,
not at import: the commands' parser is built on every call (see cli.common).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cadence.api.v1 import history_pb2, workflow_pb2
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.message import Message
    from google.protobuf.timestamp_pb2 import Timestamp

#: The events that end a run (what GetWorkflowExecutionHistory's CLOSE_EVENT filter returns).
CLOSE_EVENTS = frozenset(
    {
        "WorkflowExecutionCompleted",
        "WorkflowExecutionFailed",
        "WorkflowExecutionTimedOut",
        "WorkflowExecutionCanceled",
        "WorkflowExecutionTerminated",
        "WorkflowExecutionContinuedAsNew",
    }
)

#: Per event type, the attributes worth a glance, in the order shown. Types not listed show
#: every set attribute except the noise below.
KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "WorkflowExecutionStarted": (
        "workflow_type", "task_list", "input", "execution_start_to_close_timeout",
        "task_start_to_close_timeout", "attempt", "cron_schedule", "retry_policy", "continued_execution_run_id",
        "first_decision_task_backoff", "parent_execution_info",
    ),
    "WorkflowExecutionCompleted": ("result",),
    "WorkflowExecutionFailed": ("failure",),
    "WorkflowExecutionTimedOut": ("timeout_type",),
    "WorkflowExecutionCanceled": ("details",),
    "WorkflowExecutionTerminated": ("reason", "details", "identity"),
    "WorkflowExecutionContinuedAsNew": ("new_execution_run_id", "workflow_type", "input", "initiator", "failure"),
    "WorkflowExecutionSignaled": ("signal_name", "input", "identity"),
    "WorkflowExecutionCancelRequested": ("cause", "identity", "external_execution_info"),
    "DecisionTaskScheduled": ("task_list", "start_to_close_timeout", "attempt"),
    "DecisionTaskStarted": ("scheduled_event_id", "identity"),
    "DecisionTaskCompleted": ("scheduled_event_id", "started_event_id", "identity"),
    "DecisionTaskTimedOut": ("scheduled_event_id", "started_event_id", "timeout_type", "cause"),
    "DecisionTaskFailed": ("scheduled_event_id", "started_event_id", "cause", "failure", "identity"),
    "ActivityTaskScheduled": (
        "activity_id", "activity_type", "task_list", "input", "schedule_to_close_timeout",
        "start_to_close_timeout", "retry_policy",
    ),
    "ActivityTaskStarted": ("scheduled_event_id", "identity", "attempt", "last_failure"),
    "ActivityTaskCompleted": ("scheduled_event_id", "started_event_id", "result"),
    "ActivityTaskFailed": ("scheduled_event_id", "started_event_id", "failure"),
    "ActivityTaskTimedOut": ("scheduled_event_id", "started_event_id", "timeout_type", "details", "last_failure"),
    "ActivityTaskCancelRequested": ("activity_id",),
    "ActivityTaskCanceled": ("scheduled_event_id", "started_event_id", "details"),
    "RequestCancelActivityTaskFailed": ("activity_id", "cause"),
    "TimerStarted": ("timer_id", "start_to_fire_timeout"),
    "TimerFired": ("timer_id", "started_event_id"),
    "TimerCanceled": ("timer_id", "started_event_id"),
    "CancelTimerFailed": ("timer_id", "cause"),
    "MarkerRecorded": ("marker_name", "details"),
    "UpsertWorkflowSearchAttributes": ("search_attributes",),
    "StartChildWorkflowExecutionInitiated": ("domain", "workflow_id", "workflow_type", "task_list", "input"),
    "StartChildWorkflowExecutionFailed": ("workflow_id", "workflow_type", "cause", "initiated_event_id"),
    "ChildWorkflowExecutionStarted": ("workflow_execution", "workflow_type", "initiated_event_id"),
    "ChildWorkflowExecutionCompleted": ("workflow_execution", "workflow_type", "result"),
    "ChildWorkflowExecutionFailed": ("workflow_execution", "workflow_type", "failure"),
    "ChildWorkflowExecutionCanceled": ("workflow_execution", "workflow_type", "details"),
    "ChildWorkflowExecutionTimedOut": ("workflow_execution", "workflow_type", "timeout_type"),
    "ChildWorkflowExecutionTerminated": ("workflow_execution", "workflow_type"),
    "SignalExternalWorkflowExecutionInitiated": ("workflow_execution", "signal_name", "input"),
    "SignalExternalWorkflowExecutionFailed": ("workflow_execution", "cause"),
    "ExternalWorkflowExecutionSignaled": ("workflow_execution", "initiated_event_id"),
    "RequestCancelExternalWorkflowExecutionInitiated": ("workflow_execution",),
    "RequestCancelExternalWorkflowExecutionFailed": ("workflow_execution", "cause"),
    "ExternalWorkflowExecutionCancelRequested": ("workflow_execution", "initiated_event_id"),
}

#: Never shown in the one-line form: bookkeeping a person does not read (`--json` has it all).
NOISE = frozenset(
    {
        "header", "request_id", "binary_checksum", "partition_config", "active_cluster_selection_policy",
        "prev_auto_reset_points", "original_execution_run_id", "first_execution_run_id",
        "decision_task_completed_event_id", "control", "memo", "fork_event_version", "base_run_id",
        "new_run_id",
    }
)

_ATTR_SUFFIX = "_event_attributes"
_SPACES = re.compile(r"\s+")


def event_type(event: history_pb2.HistoryEvent) -> str:
    """`workflow_execution_started_event_attributes` → `WorkflowExecutionStarted`."""
    which = event.WhichOneof("attributes")
    if which is None:
        return "Unknown"
    return "".join(part.capitalize() for part in which[: -len(_ATTR_SUFFIX)].split("_"))


def event_attributes(event: history_pb2.HistoryEvent) -> Message | None:
    which = event.WhichOneof("attributes")
    return getattr(event, which) if which else None


def truncate(text: str, limit: int) -> str:
    if limit > 0 and len(text) > limit:
        return text[: max(limit - 3, 0)] + "..."
    return text


def payload_text(data: bytes, limit: int = 0) -> str:
    """Payload bytes as a person reads them: the JSON text itself, one line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes>"
    return truncate(_SPACES.sub(" ", text).strip(), limit)


def format_time(ts: Timestamp, millis: bool = False) -> str:
    """RFC 3339 in UTC; empty for an unset time."""
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    t = dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=dt.UTC)
    return t.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


def format_duration(d: Duration) -> str:
    total = d.seconds + d.nanos / 1e9
    if total == int(total):
        return f"{int(total)}s"
    return f"{total:g}s"


def enum_name(field: FieldDescriptor, number: int) -> str:
    """`TIMEOUT_TYPE_START_TO_CLOSE` → `START_TO_CLOSE`: drop the prefix every value repeats."""
    assert field.enum_type is not None
    value = field.enum_type.values_by_number.get(number)
    if value is None:
        return str(number)
    names = [v.name for v in field.enum_type.values]
    prefix = _common_prefix(names)
    return value.name[len(prefix) :] or value.name


def _common_prefix(names: list[str]) -> str:
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    i = 0
    while i < len(first) and i < len(last) and first[i] == last[i]:
        i += 1
    prefix = first[:i]
    return prefix[: prefix.rfind("_") + 1]


def value_text(field: FieldDescriptor, value: Any, limit: int) -> str:
    """One attribute value, compact: payloads as their text, names instead of wrappers."""
    from google.protobuf.descriptor import FieldDescriptor

    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_name(field, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return payload_text(value, limit)
    if field.type == FieldDescriptor.TYPE_STRING:
        return truncate(value, limit)
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return str(value)
    name = field.message_type.name
    if name == "Payload":
        return payload_text(value.data, limit)
    if name == "Timestamp":
        return format_time(value, millis=True)
    if name == "Duration":
        return format_duration(value)
    if name in ("WorkflowType", "ActivityType", "TaskList"):
        return truncate(value.name, limit)
    if name == "WorkflowExecution":
        return truncate(f"{value.workflow_id}/{value.run_id}" if value.run_id else value.workflow_id, limit)
    if name == "Failure":
        text = value.reason
        if value.details:
            text += ": " + payload_text(value.details)
        return truncate(text, limit)
    if name in ("SearchAttributes", "Memo", "Header"):
        fields = value.indexed_fields if name == "SearchAttributes" else value.fields
        if not fields:
            return ""
        return truncate("{" + ", ".join(f"{k}={payload_text(v.data)}" for k, v in sorted(fields.items())) + "}", limit)
    inner = message_text(value, limit=0)
    return truncate("{" + inner + "}", limit) if inner else ""


def message_text(msg: Message, limit: int, only: tuple[str, ...] | None = None) -> str:
    """`key=value, ...` for the set fields of msg (those in `only`, in its order, when given)."""
    from google.protobuf.descriptor import FieldDescriptor

    present = {f.name: (f, v) for f, v in msg.ListFields()}
    names = only if only is not None else tuple(n for n in present if n not in NOISE)
    parts = []
    for name in names:
        if name not in present:
            continue
        field, value = present[name]
        if field.label == FieldDescriptor.LABEL_REPEATED:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                text = "{" + ", ".join(f"{k}={v}" for k, v in sorted(value.items())) + "}"
            else:
                text = "[" + ", ".join(str(v) for v in value) + "]"
            parts.append(f"{name}={truncate(text, limit)}")
        else:
            text = value_text(field, value, limit)
            if text:  # an empty payload or message says nothing
                parts.append(f"{name}={text}")
    return ", ".join(parts)


def event_details(event: history_pb2.HistoryEvent, limit: int) -> str:
    attrs = event_attributes(event)
    if attrs is None:
        return ""
    return message_text(attrs, limit, KEY_ATTRIBUTES.get(event_type(event)))


def event_row(event: history_pb2.HistoryEvent, limit: int) -> list[str]:
    """The columns of `workflow show`: ID, TIME, TYPE, DETAILS."""
    return [str(event.event_id), format_time(event.event_time, millis=True), event_type(event), event_details(event, limit)]


def event_line(event: history_pb2.HistoryEvent, limit: int) -> str:
    """One self-contained line (for `observe`, where events arrive one by one)."""
    event_id, time, kind, details = event_row(event, limit)
    return f"{event_id:>5}  {time:<24}  {kind:<40}  {details}".rstrip()


def execution_status(info: workflow_pb2.WorkflowExecutionInfo) -> str:
    """COMPLETED, FAILED, ... for a closed run; OPEN while it runs."""
    if info.close_status:
        return enum_name(info.DESCRIPTOR.fields_by_name["close_status"], info.close_status)
    return "OPEN"
