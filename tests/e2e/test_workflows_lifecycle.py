"""Workflow lifecycle through the official client on a real server: signals (order,
signal-with-start), the four workflow-id reuse policies, request-id idempotency,
terminate, describe, cancel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from cadence.api.v1 import service_worker_pb2, workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    RequestCancelWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.error import (
    CancellationAlreadyRequestedError,
    WorkflowExecutionAlreadyCompletedError,
    WorkflowExecutionAlreadyStartedError,
)
from cadence.worker import Worker
from workflows import (
    Env,
    finish,
    get_history,
    kind,
    kinds,
    registry,
    result,
    running,
    start_request,
    wait_for_event,
)

# Issue 5: these run on every store (SQLite, PostgreSQL, MariaDB).
pytestmark = pytest.mark.all_stores

P = workflow_pb2


async def terminate(
    env: Env, execution: WorkflowExecution, reason: str = "test", details: bytes = b""
) -> None:
    request = TerminateWorkflowExecutionRequest(
        domain=env.client.domain, workflow_execution=execution, reason=reason, identity="e2e-test"
    )
    request.details.data = details
    await env.client.workflow_stub.TerminateWorkflowExecution(request, timeout=30)


async def describe(env: Env, execution: WorkflowExecution) -> Any:
    request = DescribeWorkflowExecutionRequest(domain=env.client.domain, workflow_execution=execution)
    return await env.client.workflow_stub.DescribeWorkflowExecution(request, timeout=30)


# --- signals -------------------------------------------------------------------------


async def test_signals_are_delivered_in_order(server: Any, domain: str) -> None:
    sent = [f"item-{i}" for i in range(6)]
    async with running(server.address, domain) as env:
        execution = await env.start("SignalCollectorWorkflow", len(sent))
        for item in sent:
            await env.client.signal_workflow(execution.workflow_id, "", "add", item)
        assert await result(env.client, execution, list[str]) == sent
        events = await get_history(env.client, execution)
        signaled = [
            e.workflow_execution_signaled_event_attributes
            for e in events
            if kind(e) == "workflow_execution_signaled"
        ]
        assert [s.signal_name for s in signaled] == ["add"] * len(sent)
        assert [env.client.data_converter.from_data(s.input, [str])[0] for s in signaled] == sent


async def test_signal_with_start_starts_then_signals(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        workflow_id = f"sws-{uuid.uuid4().hex[:8]}"
        execution = await env.client.signal_with_start_workflow(
            "SignalCollectorWorkflow",
            "add",
            ["first"],
            2,
            task_list=env.task_list,
            workflow_id=workflow_id,
            execution_start_to_close_timeout=timedelta(seconds=60),
        )
        # A second signal-with-start on the open run only signals it (same run).
        again = await env.client.signal_with_start_workflow(
            "SignalCollectorWorkflow",
            "add",
            ["second"],
            2,
            task_list=env.task_list,
            workflow_id=workflow_id,
            execution_start_to_close_timeout=timedelta(seconds=60),
        )
        assert again.run_id == execution.run_id
        assert await result(env.client, execution, list[str]) == ["first", "second"]
        events = await get_history(env.client, execution)
        assert kinds(events)[:3] == [
            "workflow_execution_started",
            "workflow_execution_signaled",
            "decision_task_scheduled",
        ]


async def test_signal_of_a_closed_run_fails(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("EchoWorkflow", "x")
        await result(env.client, execution, str)
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await env.client.signal_workflow(execution.workflow_id, execution.run_id, "add", "late")


async def test_signal_is_deduplicated_on_request_id(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("SignalCollectorWorkflow", 2)
        request = SignalWorkflowExecutionRequest(
            domain=domain,
            workflow_execution=execution,
            signal_name="add",
            request_id=str(uuid.uuid4()),
            signal_input=env.client.data_converter.to_data(["once"]),
        )
        # A retried call (same request_id) is delivered once.
        await env.client.workflow_stub.SignalWorkflowExecution(request, timeout=10)
        await env.client.workflow_stub.SignalWorkflowExecution(request, timeout=10)
        await env.client.signal_workflow(execution.workflow_id, "", "add", "twice")
        assert await result(env.client, execution, list[str]) == ["once", "twice"]


async def test_signal_with_start_after_the_run_closed_starts_a_new_run(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        first = await env.start("SignalCollectorWorkflow", 1)
        await env.client.signal_workflow(first.workflow_id, "", "add", "a")
        assert await result(env.client, first, list[str]) == ["a"]
        second = await env.client.signal_with_start_workflow(
            "SignalCollectorWorkflow",
            "add",
            ["b"],
            1,
            task_list=env.task_list,
            workflow_id=first.workflow_id,
            execution_start_to_close_timeout=timedelta(seconds=60),
        )
        assert second.run_id != first.run_id
        assert await result(env.client, second, list[str]) == ["b"]


# --- workflow id reuse policies ------------------------------------------------------


async def _closed_run(env: Env, workflow_id: str, failed: bool) -> WorkflowExecution:
    wf, arg = ("FailingWorkflow", "planned") if failed else ("EchoWorkflow", "done")
    execution = await env.start(wf, arg, workflow_id=workflow_id)
    close, _ = await finish(env.client, execution)
    assert kind(close) == ("workflow_execution_failed" if failed else "workflow_execution_completed")
    return execution


async def test_reuse_policy_allow_duplicate_failed_only(server: Any, domain: str) -> None:
    policy = P.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
    async with running(server.address, domain) as env:
        completed_id = f"adfo-c-{uuid.uuid4().hex[:8]}"
        first = await _closed_run(env, completed_id, failed=False)
        with pytest.raises(WorkflowExecutionAlreadyStartedError) as info:
            await env.start(
                "EchoWorkflow", "again", workflow_id=completed_id, workflow_id_reuse_policy=policy
            )
        assert info.value.run_id == first.run_id

        failed_id = f"adfo-f-{uuid.uuid4().hex[:8]}"
        failed = await _closed_run(env, failed_id, failed=True)
        second = await env.start(
            "EchoWorkflow", "again", workflow_id=failed_id, workflow_id_reuse_policy=policy
        )
        assert second.run_id != failed.run_id
        assert await result(env.client, second, str) == "again"


async def test_reuse_policy_allow_duplicate(server: Any, domain: str) -> None:
    policy = P.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
    async with running(server.address, domain) as env:
        workflow_id = f"ad-{uuid.uuid4().hex[:8]}"
        first = await _closed_run(env, workflow_id, failed=False)
        second = await env.start(
            "EchoWorkflow", "again", workflow_id=workflow_id, workflow_id_reuse_policy=policy
        )
        assert second.run_id != first.run_id
        assert await result(env.client, second, str) == "again"
        # The first run's history is still readable by its run id.
        assert kind((await get_history(env.client, first))[-1]) == "workflow_execution_completed"


async def test_reuse_policy_reject_duplicate(server: Any, domain: str) -> None:
    policy = P.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
    async with running(server.address, domain) as env:
        workflow_id = f"rd-{uuid.uuid4().hex[:8]}"
        failed = await _closed_run(env, workflow_id, failed=True)
        with pytest.raises(WorkflowExecutionAlreadyStartedError) as info:
            await env.start("EchoWorkflow", "again", workflow_id=workflow_id, workflow_id_reuse_policy=policy)
        assert info.value.run_id == failed.run_id


async def test_reuse_policy_terminate_if_running(server: Any, domain: str) -> None:
    policy = P.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING
    async with running(server.address, domain) as env:
        workflow_id = f"tir-{uuid.uuid4().hex[:8]}"
        first = await env.start("BlockingWorkflow", False, workflow_id=workflow_id)
        second = await env.start(
            "EchoWorkflow", "replacement", workflow_id=workflow_id, workflow_id_reuse_policy=policy
        )
        assert second.run_id != first.run_id
        close, _ = await finish(env.client, first)
        assert kind(close) == "workflow_execution_terminated"
        assert await result(env.client, second, str) == "replacement"


async def test_start_against_an_open_run_is_rejected_by_every_other_policy(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        workflow_id = f"open-{uuid.uuid4().hex[:8]}"
        first = await env.start("BlockingWorkflow", False, workflow_id=workflow_id)
        for policy in (
            P.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
            P.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
            P.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
        ):
            with pytest.raises(WorkflowExecutionAlreadyStartedError) as info:
                await env.start(
                    "EchoWorkflow", "no", workflow_id=workflow_id, workflow_id_reuse_policy=policy
                )
            assert info.value.run_id == first.run_id
        await terminate(env, first)


async def test_start_is_idempotent_on_request_id(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        request = start_request(env.client, "EchoWorkflow", "once", task_list=env.task_list)
        first = await env.client.workflow_stub.StartWorkflowExecution(request, timeout=30)
        retry = await env.client.workflow_stub.StartWorkflowExecution(request, timeout=30)
        assert retry.run_id == first.run_id
        execution = WorkflowExecution(workflow_id=request.workflow_id, run_id=first.run_id)
        assert await result(env.client, execution, str) == "once"


# --- terminate, describe, cancel ------------------------------------------------------


async def test_terminate(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("BlockingWorkflow", False)
        await wait_for_event(env.client, execution, "decision_task_completed")
        await terminate(env, execution, reason="operator said so", details=b'"why"')
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated"
        attrs = close.workflow_execution_terminated_event_attributes
        assert (attrs.reason, attrs.details.data, attrs.identity) == (
            "operator said so",
            b'"why"',
            "e2e-test",
        )
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await terminate(env, execution)


async def test_describe(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start(
            "CancelActivityWorkflow", 20.0, run_seconds=120, task_start_to_close_timeout=timedelta(seconds=7)
        )
        await wait_for_event(env.client, execution, "activity_task_started")
        described = await describe(env, execution)
        config = described.execution_configuration
        assert config.task_list.name == env.task_list
        assert config.execution_start_to_close_timeout.seconds == 120
        assert config.task_start_to_close_timeout.seconds == 7
        info = described.workflow_execution_info
        assert info.workflow_execution.workflow_id == execution.workflow_id
        assert info.workflow_execution.run_id == execution.run_id
        assert info.type.name == "CancelActivityWorkflow"
        assert info.task_list == env.task_list
        assert info.start_time.seconds > 0
        assert not info.HasField("close_time") or info.close_time.seconds == 0
        assert len(described.pending_activities) == 1
        pending = described.pending_activities[0]
        assert pending.activity_type.name == "cancellable_activity"
        assert pending.attempt == 0
        assert pending.state == workflow_pb2.PENDING_ACTIVITY_STATE_STARTED
        assert pending.activity_id == "0"
        # The activity heartbeats "waiting" every 0.2 s: describe shows the last details.
        for _ in range(50):
            if pending.heartbeat_details.data:
                break
            await asyncio.sleep(0.1)
            pending = (await describe(env, execution)).pending_activities[0]
        assert env.client.data_converter.from_data(pending.heartbeat_details, [str]) == ["waiting"]
        assert pending.last_heartbeat_time.seconds > 0

        await env.client.signal_workflow(execution.workflow_id, "", "cancel")
        assert await result(env.client, execution, str) == "activity cancelled"
        closed = await describe(env, execution)
        assert (
            closed.workflow_execution_info.close_status
            == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
        )
        assert not closed.pending_activities


async def test_cancel_workflow(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("BlockingWorkflow", False)
        await wait_for_event(env.client, execution, "decision_task_completed")
        await env.client.cancel_workflow(execution.workflow_id, execution.run_id)
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_canceled"
        assert "workflow_execution_cancel_requested" in kinds(events)


async def test_second_cancel_request_is_rejected(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("BlockingWorkflow", True)
        await wait_for_event(env.client, execution, "decision_task_completed")
        request = RequestCancelWorkflowExecutionRequest(
            domain=domain,
            workflow_execution=WorkflowExecution(workflow_id=execution.workflow_id),
            identity="e2e-test",
            request_id=str(uuid.uuid4()),
        )
        await env.client.workflow_stub.RequestCancelWorkflowExecution(request, timeout=10)
        # A retry of the same request (same request_id) succeeds again, as in Go Cadence;
        # another request is refused.
        await env.client.workflow_stub.RequestCancelWorkflowExecution(request, timeout=10)
        with pytest.raises(CancellationAlreadyRequestedError):
            await env.client.cancel_workflow(execution.workflow_id, "")
        await env.client.signal_workflow(execution.workflow_id, "", "finish", "ok")
        assert await result(env.client, execution, str) == "cancel ignored, finished with ok"
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await env.client.cancel_workflow(execution.workflow_id, execution.run_id)


async def test_describe_shows_a_pending_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("EchoWorkflow", "nobody polls")
        described = await describe(env, execution)
        assert described.pending_decision.state == workflow_pb2.PENDING_DECISION_STATE_SCHEDULED
        assert described.pending_decision.schedule_id == 2
        assert not described.pending_activities
        await terminate(env, execution)


# --- history pages and polls ---------------------------------------------------------


async def test_history_pages_join_into_the_whole_history(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("SequentialActivitiesWorkflow", 0)
        assert await result(env.client, execution, int) == 3
        whole = await get_history(env.client, execution)
        first_page = await env.client.workflow_stub.GetWorkflowExecutionHistory(
            GetWorkflowExecutionHistoryRequest(domain=domain, workflow_execution=execution, page_size=4),
            timeout=30,
        )
        assert list(first_page.history.events) == whole[:4]
        assert first_page.next_page_token
        assert await get_history(env.client, execution, page_size=4) == whole
        # An empty run id reads the current run.
        current = WorkflowExecution(workflow_id=execution.workflow_id)
        assert await get_history(env.client, current) == whole


async def test_poll_of_an_empty_task_list_answers_empty(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        request = service_worker_pb2.PollForDecisionTaskRequest(
            domain=domain, task_list=TaskList(name=env.task_list), identity="e2e-test"
        )
        # Answered (empty) before the 3 s deadline: no DEADLINE_EXCEEDED.
        response = await env.client.worker_stub.PollForDecisionTask(request, timeout=3)
        assert response.task_token == b""
        assert not response.HasField("history")


async def test_task_of_a_cancelled_poll_goes_to_the_next_worker(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        # A worker polls and shuts down: its in-flight polls are cancelled.
        async with Worker(env.client, env.task_list, registry):
            await asyncio.sleep(0.5)
        execution = await env.start("OneActivityWorkflow", 6)
        await asyncio.sleep(0.5)
        async with Worker(env.client, env.task_list, registry):
            assert await result(env.client, execution, int) == 7
