"""Request validation shared by the WorkflowAPI and WorkerAPI handlers.

These are Go Cadence's frontend checks (service/frontend/api/request_validator.go and
workflow_handler.go): every failure is a BadRequestError whose message names the field,
worded as the Go server words it, so operators and client authors recognise them.

Validation runs on every call of the hot path (polls, responds, starts), so each check
is a plain attribute read and a comparison: no reflection over descriptors, no
`HasField` walks beyond what the check needs, payload sizes read with `len()` on bytes
already in memory.
"""

from __future__ import annotations

import uuid
from typing import Any

from cadence.api.v1 import common_pb2, tasklist_pb2

from cadence_fast.errors import BadRequestError

#: Go Cadence's default `limit.maxIDLength`: domain, workflow id, workflow type, task list,
#: signal name, request id, activity id and identity may not be longer.
MAX_ID_LENGTH = 1000

#: Task lists of this prefix belong to Cadence's own system workflows.
RESERVED_TASK_LIST_PREFIX = "/__cadence_sys/"

DOMAIN_NOT_SET = "Domain not set on request."
EXECUTION_NOT_SET = "Execution is not set on request."
WORKFLOW_ID_NOT_SET = "WorkflowId is not set on request."
TASK_TOKEN_NOT_SET = "Task token not set on request."
TASK_LIST_NOT_SET = "TaskList is not set on request."


def _too_long(value: str, message: str) -> None:
    if len(value) > MAX_ID_LENGTH:
        raise BadRequestError(message)


def duration_seconds(d: Any) -> float:
    """A google.protobuf.Duration as float seconds (0.0 when unset)."""
    return d.seconds + d.nanos / 1e9


# --- single fields -------------------------------------------------------------------


def domain_name(name: str) -> str:
    if not name:
        raise BadRequestError(DOMAIN_NOT_SET)
    _too_long(name, "Domain length exceeds limit.")
    return name


def identity(value: str) -> None:
    _too_long(value, "Identity length exceeds limit.")


def task_token(token: bytes) -> None:
    if not token:
        raise BadRequestError(TASK_TOKEN_NOT_SET)


def run_id(value: str) -> None:
    """An empty run id means "the current run"; a non-empty one must be a UUID."""
    if value:
        try:
            uuid.UUID(value)
        except ValueError:
            raise BadRequestError("Invalid RunId.") from None


def execution(request: Any) -> None:
    """`request.workflow_execution`: set, with a workflow id and a well-formed run id."""
    if not request.HasField("workflow_execution"):
        raise BadRequestError(EXECUTION_NOT_SET)
    ex = request.workflow_execution
    workflow_id = ex.workflow_id
    if not workflow_id:
        raise BadRequestError(WORKFLOW_ID_NOT_SET)
    _too_long(workflow_id, "WorkflowID length exceeds limit.")
    run_id(ex.run_id)


def task_list(tl: tasklist_pb2.TaskList, *, field: str = "TaskList") -> None:
    name = tl.name  # each protobuf attribute read costs; read once
    if not name:
        raise BadRequestError(f"{field} is not set on request.")
    if len(name) > MAX_ID_LENGTH:
        raise BadRequestError(f"{field} length exceeds limit.")
    if name.startswith(RESERVED_TASK_LIST_PREFIX):
        raise BadRequestError(f"{field} name cannot start with reserved prefix {RESERVED_TASK_LIST_PREFIX}.")


def activity_id(value: str) -> None:
    if not value:
        raise BadRequestError("ActivityID is not set on request.")
    _too_long(value, "ActivityID length exceeds limit.")


def signal_name(value: str) -> None:
    if not value:
        raise BadRequestError("SignalName is not set on request.")
    _too_long(value, "SignalName length exceeds limit.")


# --- payload sizes -------------------------------------------------------------------


def blob(size: int, field: str, limit: int) -> None:
    if size > limit:
        raise BadRequestError(f"{field} size {size} bytes exceeds the blob size limit of {limit} bytes.")


def payload(p: common_pb2.Payload, field: str, limit: int) -> None:
    blob(len(p.data), field, limit)


def payload_map(fields: Any, field: str, limit: int) -> None:
    """Memo / header / search attributes: the sum of the values (and keys) counts."""
    if fields:
        blob(sum(len(k) + len(v.data) for k, v in fields.items()), field, limit)


# --- start-shaped requests -----------------------------------------------------------


def _non_negative(d: Any, message: str) -> None:
    if d.seconds < 0 or d.nanos < 0:
        raise BadRequestError(message)


def retry_policy(rp: common_pb2.RetryPolicy) -> None:
    """Go's common.ValidateRetryPolicy, minus the checks that reject what the Python
    client legitimately sends: it omits backoff_coefficient and initial_interval when
    the user did not give them (client-contract §4d: coefficient 0 means 2)."""
    initial = duration_seconds(rp.initial_interval)
    if initial < 0:
        raise BadRequestError("InitialIntervalInSeconds cannot be less than 0 on retry policy.")
    if 0 < rp.backoff_coefficient < 1 or rp.backoff_coefficient < 0:
        raise BadRequestError("BackoffCoefficient cannot be less than 1 on retry policy.")
    maximum = duration_seconds(rp.maximum_interval)
    if maximum < 0:
        raise BadRequestError("MaximumIntervalInSeconds cannot be less than 0 on retry policy.")
    if 0 < maximum < initial:
        raise BadRequestError(
            "MaximumIntervalInSeconds cannot be less than InitialIntervalInSeconds on retry policy."
        )
    if rp.maximum_attempts < 0:
        raise BadRequestError("MaximumAttempts cannot be less than 0 on retry policy.")
    if duration_seconds(rp.expiration_interval) < 0:
        raise BadRequestError("ExpirationIntervalInSeconds cannot be less than 0 on retry policy.")


def start_request(req: Any, limit: int) -> None:
    """StartWorkflowExecutionRequest (also the start part of SignalWithStart)."""
    domain_name(req.domain)
    workflow_id = req.workflow_id
    if not workflow_id:
        raise BadRequestError(WORKFLOW_ID_NOT_SET)
    _too_long(workflow_id, "WorkflowID length exceeds limit.")
    type_name = req.workflow_type.name
    if not type_name:
        raise BadRequestError("WorkflowType is not set on request.")
    _too_long(type_name, "WorkflowType length exceeds limit.")
    task_list(req.task_list)
    if duration_seconds(req.execution_start_to_close_timeout) <= 0:
        raise BadRequestError("A valid ExecutionStartToCloseTimeoutSeconds is not set on request.")
    if duration_seconds(req.task_start_to_close_timeout) <= 0:
        raise BadRequestError("A valid TaskStartToCloseTimeoutSeconds is not set on request.")
    request_id = req.request_id
    if not request_id:
        raise BadRequestError("RequestId is not set on request.")
    _too_long(request_id, "RequestID length exceeds limit.")
    identity(req.identity)
    _non_negative(req.delay_start, "A valid DelayStartSeconds is not set on request.")
    _non_negative(req.jitter_start, "A valid JitterStartSeconds is not set on request.")
    if req.first_run_at.seconds < 0:
        raise BadRequestError("FirstRunAt cannot be before the Unix epoch.")
    if req.HasField("retry_policy"):
        retry_policy(req.retry_policy)
    payload(req.input, "Input", limit)
    # Unset maps are the common case: HasField is cheaper than materialising them.
    if req.HasField("memo"):
        payload_map(req.memo.fields, "Memo", limit)
    if req.HasField("search_attributes"):
        payload_map(req.search_attributes.indexed_fields, "SearchAttributes", limit)
    if req.HasField("header"):
        payload_map(req.header.fields, "Header", limit)


def signal_request(req: Any, limit: int) -> None:
    domain_name(req.domain)
    execution(req)
    signal_name(req.signal_name)
    identity(req.identity)
    _too_long(req.request_id, "RequestID length exceeds limit.")
    payload(req.signal_input, "SignalInput", limit)
    blob(len(req.control), "Control", limit)


def signal_with_start_request(req: Any, limit: int) -> None:
    if not req.HasField("start_request"):
        raise BadRequestError("StartRequest is not set on request.")
    start_request(req.start_request, limit)
    signal_name(req.signal_name)
    payload(req.signal_input, "SignalInput", limit)
    blob(len(req.control), "Control", limit)


def execution_request(req: Any) -> None:
    """Requests that only name a domain and an execution (describe, history, ...)."""
    domain_name(req.domain)
    execution(req)


# --- worker requests -----------------------------------------------------------------


def poll_request(req: Any) -> None:
    domain_name(req.domain)
    if not req.HasField("task_list"):
        raise BadRequestError(TASK_LIST_NOT_SET)
    task_list(req.task_list)
    identity(req.identity)


def by_id_request(req: Any) -> None:
    """The *ByID activity calls: domain, workflow id (run id optional), activity id."""
    domain_name(req.domain)
    execution(req)
    activity_id(req.activity_id)
    identity(req.identity)


def failure(f: common_pb2.Failure, limit: int) -> None:
    _too_long(f.reason, "Failure reason length exceeds limit.")
    blob(len(f.details), "Failure details", limit)
