"""Issue 4, sticky execution, driven with raw gRPC the way the Go client drives it (the
Python client does not use sticky lists): RespondDecisionTaskCompleted with
sticky_attributes (a STICKY worker_task_list and a schedule-to-start timeout), the next
decisions delivered on the sticky list with only the events since the previous decision
started, the fallback to the normal list when the sticky worker does not pick the task up
in time (DecisionTaskTimedOut SCHEDULE_TO_START) or has no live poller at all
(StickyWorkerUnavailable), and ResetStickyTaskList."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.error import CadenceRpcError
from issue4_helpers import (
    GO_IDENTITY,
    STICKY,
    attrs,
    complete_decision,
    count,
    poll_decision,
    poll_until_task,
    respond,
    running,
    timer_decision,
)
from workflows import Env, finish, get_history, kind, kinds

HAND_DRIVEN = "I4HandDriven"  # no worker runs it: the test is the worker


def lists(env: Env) -> tuple[TaskList, TaskList]:
    sticky = TaskList(name=f"{env.task_list}-sticky-{uuid.uuid4().hex[:6]}", kind=STICKY)
    return TaskList(name=env.task_list), sticky


async def touch(env: Env, task_list: TaskList) -> None:
    """One short empty poll: the list now has a recently seen poller (a live Go worker)."""
    try:
        task = await poll_decision(env.client, task_list, seconds=1)
    except CadenceRpcError as error:  # the client maps every gRPC error to its own types
        assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED, error
        return
    assert not task.task_token, "unexpected task on an idle list"


async def close_with(env: Env, task: W.PollForDecisionTaskResponse, execution: Any) -> list[Any]:
    await respond(env.client, task, [complete_decision()])
    close, events = await finish(env.client, execution)
    assert kind(close) == "workflow_execution_completed", kinds(events)
    return events


async def test_sticky_decisions_carry_only_the_new_events(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        assert [e.event_id for e in first.history.events] == list(range(1, first.started_event_id + 1))

        # A sticky poller waits (as the Go worker's does) when the next decision comes.
        waiting = asyncio.ensure_future(poll_decision(env.client, sticky, 10))
        await respond(env.client, first, sticky=sticky, schedule_to_start=5)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge", "one")
        second = await waiting
        assert second.task_token, "the decision did not go to the sticky list"
        assert second.previous_started_event_id.value == first.started_event_id
        events = list(second.history.events)
        # Only what is new since the previous decision started, up to this one's start.
        assert events[0].event_id == first.started_event_id + 1, kinds(events)
        assert [e.event_id for e in events] == list(range(events[0].event_id, second.started_event_id + 1))
        assert kinds(events) == [
            "decision_task_completed",
            "workflow_execution_signaled",
            "decision_task_scheduled",
            "decision_task_started",
        ]
        assert not second.next_page_token
        assert second.workflow_execution_task_list.name == env.task_list

        # Stay sticky: a timer, then the firing comes back on the sticky list too.
        waiting = asyncio.ensure_future(poll_decision(env.client, sticky, 10))
        await respond(env.client, second, [timer_decision("t1", 1)], sticky=sticky, schedule_to_start=5)
        third = await waiting
        assert third.task_token
        assert third.history.events[0].event_id == second.started_event_id + 1
        assert kinds(third.history.events) == [
            "decision_task_completed",
            "timer_started",
            "timer_fired",
            "decision_task_scheduled",
            "decision_task_started",
        ]
        history = await close_with(env, third, execution)
        # The sticky-served decisions are ordinary events in the run's history.
        assert count(history, "decision_task_completed") == 3
        assert "decision_task_timed_out" not in kinds(history)


async def test_sticky_schedule_to_start_timeout_falls_back_to_the_normal_list(
    server: Any, domain: str
) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        await touch(env, sticky)  # the sticky worker looks alive ...
        await respond(env.client, first, sticky=sticky, schedule_to_start=1)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        # ... but does not poll again: after 1 s the decision times out and is scheduled
        # again on the normal list, whose poll reply carries the whole history.
        second = await poll_until_task(env.client, normal)
        assert kind(second.history.events[0]) == "workflow_execution_started"
        assert second.history.events[-1].event_id == second.started_event_id
        timed_out = next(e for e in second.history.events if kind(e) == "decision_task_timed_out")
        assert attrs(timed_out).timeout_type == workflow_pb2.TIMEOUT_TYPE_SCHEDULE_TO_START
        assert not attrs(timed_out).started_event_id
        history = await close_with(env, second, execution)
        assert count(history, "decision_task_timed_out") == 1
        # The sticky list never got the task.
        await touch(env, sticky)  # asserts the list holds no task


async def test_no_live_sticky_poller_falls_back_at_once(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        # Nobody ever polled the sticky list: StickyWorkerUnavailable sends the decision to
        # the normal list right away, well before the 60 s schedule-to-start timeout.
        await respond(env.client, first, sticky=sticky, schedule_to_start=60)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        second = await poll_until_task(env.client, normal, within=10)
        assert kind(second.history.events[0]) == "workflow_execution_started"
        history = await close_with(env, second, execution)
        assert "decision_task_timed_out" not in kinds(history)


async def test_reset_sticky_task_list(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        await touch(env, sticky)
        await respond(env.client, first, sticky=sticky, schedule_to_start=60)
        await env.client.worker_stub.ResetStickyTaskList(
            W.ResetStickyTaskListRequest(domain=domain, workflow_execution=execution), timeout=10
        )
        await touch(env, sticky)  # the sticky worker is alive, but no longer this run's
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        second = await poll_until_task(env.client, normal, within=10)
        assert kind(second.history.events[0]) == "workflow_execution_started"
        history = await close_with(env, second, execution)
        assert "decision_task_timed_out" not in kinds(history)
        assert history == await get_history(env.client, execution)


async def test_sticky_task_waiting_in_the_backlog(server: Any, domain: str) -> None:
    """The sticky worker polls only after the decision was added (it was busy): the task
    waits on the sticky list and still carries only the new events."""
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        await touch(env, sticky)
        await respond(env.client, first, sticky=sticky, schedule_to_start=10)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        await asyncio.sleep(0.5)
        second = await poll_until_task(env.client, sticky, within=5)
        assert second.history.events[0].event_id == first.started_event_id + 1
        assert kinds(second.history.events)[-1] == "decision_task_started"
        await close_with(env, second, execution)


async def test_failed_sticky_decision_goes_back_to_the_normal_list(server: Any, domain: str) -> None:
    """A worker that fails a decision lost its cached state: the retry goes to the normal
    list with the whole history (Go clears stickiness on RespondDecisionTaskFailed)."""
    async with running(server.address, domain, worker=False) as env:
        normal, sticky = lists(env)
        execution = await env.start(HAND_DRIVEN)
        first = await poll_until_task(env.client, normal)
        waiting = asyncio.ensure_future(poll_decision(env.client, sticky, 10))
        await respond(env.client, first, sticky=sticky, schedule_to_start=30)
        await env.client.signal_workflow(execution.workflow_id, "", "nudge")
        second = await waiting
        assert second.task_token
        await env.client.worker_stub.RespondDecisionTaskFailed(
            W.RespondDecisionTaskFailedRequest(
                task_token=second.task_token,
                cause=workflow_pb2.DECISION_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
                identity=GO_IDENTITY,
            ),
            timeout=10,
        )
        await touch(env, sticky)  # alive, but no longer trusted with this run
        third = await poll_until_task(env.client, normal, within=10)
        assert kind(third.history.events[0]) == "workflow_execution_started"
        await close_with(env, third, execution)
