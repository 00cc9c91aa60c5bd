"""Bad input through the official client: each gets the right typed error, names the
offending field, and leaves the workflow's stored history unchanged.

The worker side is driven by hand over the client's raw WorkerAPI stub, so the tests
hold real task tokens and can send oversized results, malformed and stale tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import grpc
import pytest
import workflows
from cadence.api.v1 import decision_pb2, workflow_pb2
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1.common_pb2 import ActivityType, Failure, Payload, WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.client import Client
from cadence.error import CadenceRpcError, EntityNotExistsError
from workflows import Env, get_history, kinds, running

LIMIT = 2 * 1024 * 1024
TOO_BIG = b"x" * (LIMIT + 1)


async def bad_request(call: Awaitable[Any], *field_words: str) -> str:
    """Await `call`, expect INVALID_ARGUMENT whose message names the field."""
    with pytest.raises(CadenceRpcError) as info:
        await call
    err = info.value
    assert type(err) is CadenceRpcError, f"expected a plain bad request, got {type(err).__name__}: {err}"
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT, err
    message = str(err.args[0])
    for word in field_words:
        assert word in message, f"{word!r} not named in {message!r}"
    return message


def start_request(env: Env, **changes: Any) -> StartWorkflowExecutionRequest:
    request = workflows.start_request(env.client, "EchoWorkflow", "hi", task_list=env.task_list)
    for name, value in changes.items():
        target, _, attr = name.rpartition("__")
        holder = getattr(request, target) if target else request
        setattr(holder, attr, value)
    return request


# --- the workflow API ----------------------------------------------------------------


async def test_unknown_domain(server: Any, domain: str) -> None:
    async with Client(domain=f"no-such-domain-{uuid.uuid4().hex[:6]}", target=server.address) as client:
        with pytest.raises(EntityNotExistsError):
            await client.start_workflow(
                "EchoWorkflow", "x", task_list="tl", execution_start_to_close_timeout=timedelta(seconds=10)
            )
        with pytest.raises(EntityNotExistsError):
            await client.signal_workflow("some-id", "", "sig")
        poll = W.PollForDecisionTaskRequest(domain=client.domain, task_list=TaskList(name="tl"), identity="t")
        with pytest.raises(EntityNotExistsError):
            await client.worker_stub.PollForDecisionTask(poll, timeout=10)


async def test_start_request_fields(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        start = env.client.workflow_stub.StartWorkflowExecution
        await bad_request(start(start_request(env, domain="")), "Domain")
        await bad_request(start(start_request(env, workflow_id="")), "WorkflowId")
        await bad_request(start(start_request(env, workflow_id="w" * 1001)), "WorkflowID")
        await bad_request(start(start_request(env, task_list__name="")), "TaskList")
        await bad_request(start(start_request(env, workflow_type__name="")), "WorkflowType")
        await bad_request(start(start_request(env, request_id="")), "RequestId")
        await bad_request(
            start(start_request(env, execution_start_to_close_timeout__seconds=-5)),
            "ExecutionStartToCloseTimeout",
        )
        await bad_request(
            start(start_request(env, execution_start_to_close_timeout__seconds=0)), "ExecutionStartToClose"
        )
        await bad_request(
            start(start_request(env, task_start_to_close_timeout__seconds=-1)), "TaskStartToCloseTimeout"
        )
        await bad_request(start(start_request(env, delay_start__seconds=-3)), "DelayStart")
        await bad_request(start(start_request(env, jitter_start__seconds=-3)), "JitterStart")
        await bad_request(start(start_request(env, input__data=TOO_BIG)), "Input", "limit")
        big_memo = start_request(env)
        big_memo.memo.fields["notes"].data = TOO_BIG
        await bad_request(start(big_memo), "Memo")
        await bad_request(start(start_request(env, cron_schedule="every blue moon")), "CronSchedule")
        bad_retry = start_request(env)
        bad_retry.retry_policy.maximum_attempts = -1
        await bad_request(start(bad_retry), "MaximumAttempts")
        # Nothing of the refused starts exists.
        refused = start_request(env)
        await bad_request(
            start(start_request(env, workflow_id=refused.workflow_id, input__data=TOO_BIG)), "Input"
        )
        with pytest.raises(EntityNotExistsError):
            await get_history(env.client, WorkflowExecution(workflow_id=refused.workflow_id), check=False)


async def test_execution_fields(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        stub = env.client.workflow_stub
        no_id = WorkflowExecution(workflow_id="")
        await bad_request(
            stub.DescribeWorkflowExecution(DescribeWorkflowExecutionRequest(domain=domain)), "Execution"
        )
        await bad_request(
            stub.DescribeWorkflowExecution(
                DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=no_id)
            ),
            "WorkflowId",
        )
        bad_run = WorkflowExecution(workflow_id="w", run_id="not-a-uuid")
        await bad_request(
            stub.GetWorkflowExecutionHistory(
                GetWorkflowExecutionHistoryRequest(domain=domain, workflow_execution=bad_run)
            ),
            "RunId",
        )
        with pytest.raises(EntityNotExistsError):
            await stub.DescribeWorkflowExecution(
                DescribeWorkflowExecutionRequest(
                    domain=domain,
                    workflow_execution=WorkflowExecution(workflow_id=f"missing-{uuid.uuid4().hex}"),
                ),
                timeout=10,
            )


async def test_signal_fields_leave_history_unchanged(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("SignalCollectorWorkflow", 1)
        before = await get_history(env.client, execution)
        stub = env.client.workflow_stub

        def signal(**kw: Any) -> SignalWorkflowExecutionRequest:
            base: dict[str, Any] = {
                "domain": domain,
                "workflow_execution": execution,
                "signal_name": "add",
                "request_id": str(uuid.uuid4()),
            }
            base.update(kw)
            return SignalWorkflowExecutionRequest(**base)

        await bad_request(stub.SignalWorkflowExecution(signal(signal_name="")), "SignalName")
        await bad_request(
            stub.SignalWorkflowExecution(signal(signal_input=Payload(data=TOO_BIG))), "SignalInput"
        )
        await bad_request(stub.SignalWorkflowExecution(signal(identity="i" * 1001)), "Identity")
        assert await get_history(env.client, execution) == before


# --- the worker API, driven by hand ----------------------------------------------------


async def _poll_decision(env: Env) -> W.PollForDecisionTaskResponse:
    request = W.PollForDecisionTaskRequest(
        domain=env.client.domain, task_list=TaskList(name=env.task_list), identity="hand"
    )
    for _ in range(3):
        response = await env.client.worker_stub.PollForDecisionTask(request, timeout=10)
        if response.task_token:
            return response
    raise AssertionError("no decision task")


async def _poll_activity(env: Env) -> W.PollForActivityTaskResponse:
    request = W.PollForActivityTaskRequest(
        domain=env.client.domain, task_list=TaskList(name=env.task_list), identity="hand"
    )
    for _ in range(3):
        response = await env.client.worker_stub.PollForActivityTask(request, timeout=10)
        if response.task_token:
            return response
    raise AssertionError("no activity task")


def _schedule_activity() -> decision_pb2.Decision:
    attrs = decision_pb2.ScheduleActivityTaskDecisionAttributes(
        activity_id="0", activity_type=ActivityType(name="add_one"), input=Payload(data=b"1")
    )
    for name in (
        "schedule_to_close_timeout",
        "schedule_to_start_timeout",
        "start_to_close_timeout",
        "heartbeat_timeout",
    ):
        getattr(attrs, name).FromTimedelta(timedelta(seconds=30))
    return decision_pb2.Decision(schedule_activity_task_decision_attributes=attrs)


async def test_poll_fields(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        worker = env.client.worker_stub
        await bad_request(
            worker.PollForDecisionTask(W.PollForDecisionTaskRequest(domain=domain, identity="x"), timeout=10),
            "TaskList",
        )
        await bad_request(
            worker.PollForActivityTask(
                W.PollForActivityTaskRequest(domain=domain, task_list=TaskList(name=""), identity="x"),
                timeout=10,
            ),
            "TaskList",
        )
        await bad_request(
            worker.PollForActivityTask(
                W.PollForActivityTaskRequest(task_list=TaskList(name="t")), timeout=10
            ),
            "Domain",
        )


async def test_tokens_and_payloads_of_task_responses(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        worker = env.client.worker_stub
        execution = await env.start("HandDrivenWorkflow")
        decision = await _poll_decision(env)
        await worker.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(
                task_token=decision.task_token, decisions=[_schedule_activity()], identity="hand"
            ),
            timeout=10,
        )
        # The same decision token again: the task is done, so the token is stale.
        with pytest.raises(EntityNotExistsError):
            await worker.RespondDecisionTaskCompleted(
                W.RespondDecisionTaskCompletedRequest(task_token=decision.task_token, identity="hand"),
                timeout=10,
            )

        task = await _poll_activity(env)
        token = task.task_token
        before = await get_history(env.client, execution)

        await bad_request(
            worker.RespondActivityTaskCompleted(W.RespondActivityTaskCompletedRequest()), "Task token"
        )
        await bad_request(
            worker.RespondActivityTaskCompleted(
                W.RespondActivityTaskCompletedRequest(
                    task_token=b"\x00garbage token", result=Payload(data=b"2")
                )
            )
        )
        await bad_request(
            worker.RespondActivityTaskCompleted(
                W.RespondActivityTaskCompletedRequest(task_token=token, result=Payload(data=TOO_BIG))
            ),
            "Result",
        )
        await bad_request(
            worker.RespondActivityTaskFailed(
                W.RespondActivityTaskFailedRequest(
                    task_token=token, failure=Failure(reason="Boom", details=TOO_BIG)
                )
            ),
            "Failure details",
        )
        await bad_request(
            worker.RecordActivityTaskHeartbeat(
                W.RecordActivityTaskHeartbeatRequest(task_token=token, details=Payload(data=TOO_BIG))
            ),
            "Details",
        )
        await bad_request(
            worker.RespondActivityTaskCanceled(
                W.RespondActivityTaskCanceledRequest(task_token=token, details=Payload(data=TOO_BIG))
            ),
            "Details",
        )
        await bad_request(
            worker.RespondActivityTaskCompletedByID(
                W.RespondActivityTaskCompletedByIDRequest(domain=domain, workflow_execution=execution)
            ),
            "ActivityID",
        )
        assert await get_history(env.client, execution) == before

        # A well-formed completion goes through; the same token afterwards is stale.
        await worker.RespondActivityTaskCompleted(
            W.RespondActivityTaskCompletedRequest(
                task_token=token, result=Payload(data=b"2"), identity="hand"
            ),
            timeout=10,
        )
        with pytest.raises(EntityNotExistsError):
            await worker.RespondActivityTaskCompleted(
                W.RespondActivityTaskCompletedRequest(task_token=token, result=Payload(data=b"3")), timeout=10
            )
        with pytest.raises(EntityNotExistsError):
            await worker.RecordActivityTaskHeartbeat(
                W.RecordActivityTaskHeartbeatRequest(task_token=token), timeout=10
            )

        decision = await _poll_decision(env)
        complete = decision_pb2.Decision(
            complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
                result=Payload(data=b"2")
            )
        )
        await worker.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(
                task_token=decision.task_token, decisions=[complete], identity="hand"
            ),
            timeout=10,
        )
        events = await get_history(env.client, execution)
        assert kinds(events).count("activity_task_completed") == 1
        assert kinds(events)[-1] == "workflow_execution_completed"


async def test_bad_decision_attributes_fail_the_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        worker = env.client.worker_stub
        execution = await env.start("HandDrivenWorkflow")
        decision = await _poll_decision(env)
        bad = _schedule_activity()
        bad.schedule_activity_task_decision_attributes.start_to_close_timeout.seconds = -5
        bad.schedule_activity_task_decision_attributes.schedule_to_close_timeout.seconds = -5
        try:
            await worker.RespondDecisionTaskCompleted(
                W.RespondDecisionTaskCompletedRequest(
                    task_token=decision.task_token, decisions=[bad], identity="hand"
                ),
                timeout=10,
            )
        except CadenceRpcError as e:  # Go answers BadRequest here too; the history is what matters
            assert e.code == grpc.StatusCode.INVALID_ARGUMENT, e
        events = await get_history(env.client, execution)
        failed = [e for e in events if e.WhichOneof("attributes") == "decision_task_failed_event_attributes"]
        assert len(failed) == 1, kinds(events)
        cause = failed[0].decision_task_failed_event_attributes.cause
        assert cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
        assert "activity_task_scheduled" not in kinds(events)
        # The workflow goes on: the next decision can schedule properly.
        retry = await _poll_decision(env)
        await worker.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(
                task_token=retry.task_token, decisions=[_schedule_activity()]
            ),
            timeout=10,
        )
        assert "activity_task_scheduled" in kinds(await get_history(env.client, execution))
