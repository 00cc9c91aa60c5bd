"""Sticky execution driven with raw gRPC the way the Go client does it (sticky attributes
on RespondDecisionTaskCompleted, polls of the STICKY list, fallback to the normal list,
ResetStickyTaskList), and ResetWorkflowExecution end to end with a real worker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from cadence.api.v1 import decision_pb2, tasklist_pb2
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1.common_pb2 import Payload, WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import ResetWorkflowExecutionRequest
from cadence.api.v1.tasklist_pb2 import TaskList
from workflows import Env, finish, get_history, kind, kinds, result, running, wait_for_event

STICKY = tasklist_pb2.TASK_LIST_KIND_STICKY


def complete(result_json: bytes = b'"done"') -> decision_pb2.Decision:
    return decision_pb2.Decision(
        complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
            result=Payload(data=result_json)
        )
    )


async def poll(env: Env, task_list: TaskList, seconds: float = 5) -> W.PollForDecisionTaskResponse:
    request = W.PollForDecisionTaskRequest(domain=env.client.domain, task_list=task_list, identity="go-like")
    return await env.client.worker_stub.PollForDecisionTask(request, timeout=seconds)


async def respond_sticky(env: Env, task: Any, sticky: TaskList, schedule_to_start: int) -> None:
    attrs = tasklist_pb2.StickyExecutionAttributes(worker_task_list=sticky)
    attrs.schedule_to_start_timeout.FromTimedelta(timedelta(seconds=schedule_to_start))
    await env.client.worker_stub.RespondDecisionTaskCompleted(
        W.RespondDecisionTaskCompletedRequest(
            task_token=task.task_token, identity="go-like", sticky_attributes=attrs
        ),
        timeout=10,
    )


async def test_sticky_decisions_carry_only_new_events(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        sticky = TaskList(name=f"{env.task_list}-sticky-{uuid.uuid4().hex[:6]}", kind=STICKY)
        execution = await env.start("HandDriven")
        first = await poll(env, normal)
        assert first.task_token and kind(first.history.events[0]) == "workflow_execution_started"
        # A sticky poller is waiting (as the Go worker's is) when the next decision comes.
        sticky_poll = asyncio.ensure_future(poll(env, sticky, 10))
        await respond_sticky(env, first, sticky, schedule_to_start=5)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        second = await sticky_poll
        assert second.task_token, "the decision did not go to the sticky list"
        events = list(second.history.events)
        # Only what is new since the previous decision started.
        assert events[0].event_id == first.started_event_id + 1, kinds(events)
        assert kind(events[-1]) == "decision_task_started"
        assert "workflow_execution_signaled" in kinds(events)
        await env.client.worker_stub.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(task_token=second.task_token, decisions=[complete()]),
            timeout=10,
        )
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"


async def test_sticky_falls_back_to_the_normal_list(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        sticky = TaskList(name=f"{env.task_list}-sticky-{uuid.uuid4().hex[:6]}", kind=STICKY)
        execution = await env.start("HandDriven")
        first = await poll(env, normal)
        await respond_sticky(env, first, sticky, schedule_to_start=1)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        # Nobody polls the sticky list: the decision comes back on the normal list with
        # the whole history.
        second = None
        for _ in range(4):
            second = await poll(env, normal)
            if second.task_token:
                break
        assert second is not None and second.task_token
        assert kind(second.history.events[0]) == "workflow_execution_started"
        await env.client.worker_stub.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(task_token=second.task_token, decisions=[complete()]),
            timeout=10,
        )
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"


async def test_reset_sticky_task_list(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        sticky = TaskList(name=f"{env.task_list}-sticky-{uuid.uuid4().hex[:6]}", kind=STICKY)
        execution = await env.start("HandDriven")
        first = await poll(env, normal)
        await respond_sticky(env, first, sticky, schedule_to_start=30)
        await env.client.worker_stub.ResetStickyTaskList(
            W.ResetStickyTaskListRequest(domain=domain, workflow_execution=execution), timeout=10
        )
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        # Stickiness is gone: the next decision is on the normal list at once (well
        # before the 30 s sticky schedule-to-start timeout).
        second = await poll(env, normal, 10)
        assert second.task_token
        assert kind(second.history.events[0]) == "workflow_execution_started"
        await env.client.worker_stub.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(task_token=second.task_token, decisions=[complete()]),
            timeout=10,
        )
        await finish(env.client, execution)


async def test_reset_replays_to_the_same_state_and_continues(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("SignalCollectorWorkflow", 3)
        await wait_for_event(env.client, execution, "decision_task_completed")
        reset_point = next(
            e.event_id
            for e in await get_history(env.client, execution)
            if kind(e) == "decision_task_completed"
        )
        for item in ("a", "b"):
            await env.client.signal_workflow(execution.workflow_id, "", "add", item)
        for _ in range(100):  # both signals handled by a completed decision
            ks = kinds(await get_history(env.client, execution))
            if ks.count("workflow_execution_signaled") == 2 and ks[-1] == "decision_task_completed":
                break
            await asyncio.sleep(0.05)

        request = ResetWorkflowExecutionRequest(
            domain=domain,
            workflow_execution=execution,
            reason="e2e reset",
            decision_finish_event_id=reset_point,
            request_id=str(uuid.uuid4()),
        )
        response = await env.client.workflow_stub.ResetWorkflowExecution(request, timeout=30)
        assert response.run_id and response.run_id != execution.run_id
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated"

        new_run = WorkflowExecution(workflow_id=execution.workflow_id, run_id=response.run_id)
        # The signals after the reset point are re-applied to the new run; one more ends it.
        await env.client.signal_workflow(execution.workflow_id, "", "add", "c")
        assert await result(env.client, new_run, list[str]) == ["a", "b", "c"]
