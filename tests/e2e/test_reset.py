"""Issue 4, ResetWorkflowExecution end to end with a real official-client worker: a reset
to a DecisionTaskCompleted event id forks a new run whose history is the base run's up to
that point plus DecisionTaskFailed(RESET_WORKFLOW); an open base run is terminated; the
worker replays the new run to the state the base run had at that point (no activity run
again) and carries it on to completion, with or without the later signals re-applied.
Also RestartWorkflowExecution (the workflow run again from its start request) and
RefreshWorkflowTasks (pending work rewritten, nothing duplicated)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import (
    RefreshWorkflowTasksRequest,
    ResetWorkflowExecutionRequest,
    RestartWorkflowExecutionRequest,
)
from cadence.error import CadenceRpcError
from cadence.worker import Worker
from issue4_helpers import (
    attrs,
    count,
    first,
    registry,
    run_of,
    running,
    started_attrs,
    ts,
    wait_settled,
    wait_until,
)
from workflows import Env, finish, get_history, kind, kinds, result

RESET_WORKFLOW = workflow_pb2.DECISION_TASK_FAILED_CAUSE_RESET_WORKFLOW


async def reset(
    env: Env, execution: WorkflowExecution, event_id: int, skip_signals: bool
) -> WorkflowExecution:
    request = ResetWorkflowExecutionRequest(
        domain=env.client.domain,
        workflow_execution=execution,
        reason="e2e reset",
        decision_finish_event_id=event_id,
        request_id=str(uuid.uuid4()),
        skip_signal_reapply=skip_signals,
    )
    response = await env.client.workflow_stub.ResetWorkflowExecution(request, timeout=30)
    assert response.run_id and response.run_id != execution.run_id
    return run_of(execution, response.run_id)


async def state(env: Env, execution: WorkflowExecution) -> list[int]:
    answer: list[int] = await env.client.query_workflow(
        execution.workflow_id, execution.run_id, "state", result_type=list[int]
    )
    return answer


async def steps_waiting_for_go(env: Env) -> tuple[WorkflowExecution, int]:
    """An I4Steps run whose first activity is done and that waits for "go"; and the id of
    the DecisionTaskCompleted that left it there (the reset point)."""
    execution = await env.start("I4Steps")
    events = await wait_settled(env.client, execution, completed=2)
    assert count(events, "activity_task_completed") == 1, kinds(events)
    assert await state(env, execution) == [1]
    return execution, events[-1].event_id


def assert_forked(base: list[Any], new: list[Any], point: int, base_run: str, new_run: str) -> list[Any]:
    """The new run's history = the base run's events before `point`, then the reset's
    DecisionTaskFailed; returns what follows it."""
    assert [(e.event_id, kind(e)) for e in new[: point - 1]] == [
        (e.event_id, kind(e)) for e in base[: point - 1]
    ]
    assert (
        new[0].workflow_execution_started_event_attributes.input
        == base[0].workflow_execution_started_event_attributes.input
    )
    failed = new[point - 1]
    assert kind(failed) == "decision_task_failed", kinds(new)
    a = attrs(failed)
    assert a.cause == RESET_WORKFLOW
    assert a.base_run_id == base_run and a.new_run_id == new_run
    assert a.scheduled_event_id == new[point - 3].event_id and a.started_event_id == new[point - 2].event_id
    return new[point:]


async def test_reset_replays_to_the_same_state_and_continues(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution, point = await steps_waiting_for_go(env)
        await env.client.signal_workflow(execution.workflow_id, "", "go")
        await wait_settled(env.client, execution, signals=1, completed=3)
        assert await state(env, execution) == [1, 11]

        new_run = await reset(env, execution, point, skip_signals=True)
        # The open base run is terminated.
        close, base = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated", kinds(base)

        # The worker replays the copied events and, with "go" not re-applied, is back at
        # the reset point: waiting, with the first result only; no activity runs again.
        new = await wait_until(
            env.client,
            new_run,
            lambda e: len(e) > point and kinds(e)[-1] == "decision_task_completed",
            "the new run's first decision",
        )
        after = assert_forked(base, new, point, execution.run_id, new_run.run_id)
        assert "workflow_execution_signaled" not in kinds(after)
        assert count(new, "activity_task_scheduled") == 1
        assert await state(env, new_run) == [1]
        assert started_attrs(new).first_execution_run_id == execution.run_id

        # And it carries on to completion like the base run would have.
        await env.client.signal_workflow(execution.workflow_id, "", "go")
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        assert await result(env.client, new_run, list[int]) == [1, 11]
        _, new = await finish(env.client, new_run)
        assert count(new, "activity_task_completed") == 2
        # The id's current run is the new one.
        assert await get_history(env.client, WorkflowExecution(workflow_id=execution.workflow_id)) == new


async def test_reset_of_a_completed_run_reapplies_its_signals(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution, point = await steps_waiting_for_go(env)
        await env.client.signal_workflow(execution.workflow_id, "", "go")
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        assert await result(env.client, execution, list[int]) == [1, 11]
        _, base = await finish(env.client, execution)

        new_run = await reset(env, execution, point, skip_signals=False)
        # A closed base run stays as it closed.
        close, again = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed" and again == base

        # The signals received after the point are re-applied after the reset's
        # DecisionTaskFailed, so the replayed run redoes the second step and completes.
        assert await result(env.client, new_run, list[int]) == [1, 11]
        _, new = await finish(env.client, new_run)
        after = assert_forked(base, new, point, execution.run_id, new_run.run_id)
        signals = [attrs(e).signal_name for e in after if kind(e) == "workflow_execution_signaled"]
        assert signals == ["go", "finish"]
        assert count(new, "activity_task_completed") == 2


async def restart(env: Env, execution: WorkflowExecution) -> WorkflowExecution:
    request = RestartWorkflowExecutionRequest(
        domain=env.client.domain, workflow_execution=execution, identity="e2e", reason="e2e restart"
    )
    response = await env.client.workflow_stub.RestartWorkflowExecution(request, timeout=30)
    assert response.run_id and response.run_id != execution.run_id
    return run_of(execution, response.run_id)


async def test_restart_runs_a_closed_workflow_again(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4Echo", "again", memo={"why": "restart"})
        assert await result(env.client, execution, str) == "again"
        _, base = await finish(env.client, execution)
        new_run = await restart(env, execution)
        assert await result(env.client, new_run, str) == "again"
        _, new = await finish(env.client, new_run)
        old, fresh = started_attrs(base), started_attrs(new)
        assert fresh.workflow_type == old.workflow_type and fresh.input == old.input
        assert fresh.task_list.name == env.task_list
        assert fresh.memo == old.memo
        # The closed base run is untouched.
        assert await get_history(env.client, execution) == base


async def test_restart_of_an_open_run_terminates_it(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4Collector", 1)
        await wait_settled(env.client, execution)
        new_run = await restart(env, execution)
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated"
        await env.client.signal_workflow(execution.workflow_id, "", "add", "to the new run")
        assert await result(env.client, new_run, list[str]) == ["to the new run"]


async def test_refresh_workflow_tasks_duplicates_nothing(server: Any, domain: str) -> None:
    """RefreshWorkflowTasks rewrites the tasks of what is pending (here a timer); the timer
    still fires once and the run completes as it would have."""
    async with running(server.address, domain) as env:
        execution = await env.start("I4Timer", 1.5)
        await wait_until(env.client, execution, lambda e: "timer_started" in kinds(e), "TimerStarted")
        for _ in range(2):
            await env.client.workflow_stub.RefreshWorkflowTasks(
                RefreshWorkflowTasksRequest(domain=domain, workflow_execution=execution), timeout=10
            )
        assert await result(env.client, execution, str) == "slept 1.5"
        events = await get_history(env.client, execution)
        assert count(events, "timer_fired") == 1
        assert count(events, "decision_task_scheduled") == 2


async def test_reset_to_a_point_with_an_activity_pending_dispatches_it_again(
    server: Any, domain: str
) -> None:
    """At the reset point the activity is scheduled and not started (nobody polls its task
    list yet): the new run has it pending again, a worker that comes later runs it for the
    new run, and the run completes."""
    async with running(server.address, domain) as env:
        activities = f"{env.task_list}-later"
        execution = await env.start("I4SlowStep", 0.1, activities)
        await wait_until(env.client, execution, lambda e: "activity_task_scheduled" in kinds(e), "scheduled")
        await env.client.signal_workflow(execution.workflow_id, "", "note", "while pending")
        events = await wait_settled(env.client, execution, signals=1, completed=2)
        assert "activity_task_started" not in kinds(events)
        point = events[-1].event_id

        new_run = await reset(env, execution, point, skip_signals=False)
        close, base = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated", kinds(base)
        async with Worker(env.client, activities, registry):
            assert await result(env.client, new_run, list[str]) == ["while pending", "slept 0.1"]
        _, new = await finish(env.client, new_run)
        assert_forked(base, new, point, execution.run_id, new_run.run_id)
        assert count(new, "activity_task_scheduled") == 1
        assert first(new, "activity_task_started").event_id > point
        assert count(new, "activity_task_completed") == 1


async def test_reset_fails_an_activity_started_before_the_point(server: Any, domain: str) -> None:
    """An activity started before the reset point belongs to the base run's worker, which
    can never report it to the new run: the reset fails it at once (Go's
    failInflightActivity: ActivityTaskFailed with the reset reason, right after the
    reset's DecisionTaskFailed) instead of leaving it to its start-to-close timeout."""
    async with running(server.address, domain) as env:
        execution = await env.start("I4SlowStep", 1.5, "")
        await wait_until(env.client, execution, lambda e: "activity_task_started" in kinds(e), "started")
        await env.client.signal_workflow(execution.workflow_id, "", "note", "while busy")
        events = await wait_settled(env.client, execution, signals=1, completed=2)
        point = events[-1].event_id
        new_run = await reset(env, execution, point, skip_signals=False)
        _, base = await finish(env.client, execution)
        new = await get_history(env.client, new_run)
        after = assert_forked(base, new, point, execution.run_id, new_run.run_id)
        assert kind(after[0]) == "activity_task_failed", kinds(new)
        failed = attrs(after[0])
        assert failed.scheduled_event_id == first(new, "activity_task_scheduled").event_id
        assert failed.started_event_id == first(new, "activity_task_started").event_id
        assert failed.failure.reason == "e2e reset"
        # The worker hears of it at once: the workflow does not catch activity failures.
        close, new = await finish(env.client, new_run)
        assert kind(close) == "workflow_execution_failed", kinds(new)
        assert "activity_task_timed_out" not in kinds(new)


async def test_reset_retried_with_its_request_id_is_not_applied_twice(server: Any, domain: str) -> None:
    """A client that retries a reset (same request_id) gets the run the first call made;
    that run is not reset again (nor terminated). Go: ResetWorkflowExecution dedups on the
    current run's create request id."""
    async with running(server.address, domain) as env:
        execution, point = await steps_waiting_for_go(env)
        request = ResetWorkflowExecutionRequest(
            domain=domain,
            workflow_execution=execution,
            reason="e2e reset",
            decision_finish_event_id=point,
            request_id=str(uuid.uuid4()),
        )
        first_reply = await env.client.workflow_stub.ResetWorkflowExecution(request, timeout=30)
        again = await env.client.workflow_stub.ResetWorkflowExecution(request, timeout=30)
        assert again.run_id == first_reply.run_id
        new_run = run_of(execution, first_reply.run_id)
        events = await wait_settled(env.client, new_run, completed=1)
        assert "workflow_execution_terminated" not in kinds(events)
        await env.client.signal_workflow(execution.workflow_id, "", "go")
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        assert await result(env.client, new_run, list[int]) == [1, 11]


async def test_reset_to_an_event_that_is_not_a_decision_completion_is_refused(
    server: Any, domain: str
) -> None:
    async with running(server.address, domain) as env:
        execution, _ = await steps_waiting_for_go(env)
        request = ResetWorkflowExecutionRequest(
            domain=domain,
            workflow_execution=execution,
            reason="e2e reset",
            decision_finish_event_id=1,
            request_id=str(uuid.uuid4()),
        )
        with pytest.raises(CadenceRpcError) as info:
            await env.client.workflow_stub.ResetWorkflowExecution(request, timeout=30)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "DecisionFinishEventId" in str(info.value)
        # Nothing happened to the run.
        await env.client.signal_workflow(execution.workflow_id, "", "go")
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        assert await result(env.client, execution, list[int]) == [1, 11]


async def test_reset_to_a_point_with_a_timer_pending_keeps_the_timer(server: Any, domain: str) -> None:
    """The timer started before the reset point is pending in the new run too: it fires
    (once, never before its TimerStarted time + duration) and the run completes."""
    async with running(server.address, domain) as env:
        execution = await env.start("I4NotedTimer", 2.0)
        await wait_until(env.client, execution, lambda e: "timer_started" in kinds(e), "TimerStarted")
        await env.client.signal_workflow(execution.workflow_id, "", "note", "before the point")
        events = await wait_settled(env.client, execution, signals=1, completed=2)
        point = events[-1].event_id
        new_run = await reset(env, execution, point, skip_signals=False)
        assert await result(env.client, new_run, list[str]) == ["before the point"]
        _, base = await finish(env.client, execution)
        _, new = await finish(env.client, new_run)
        assert_forked(base, new, point, execution.run_id, new_run.run_id)
        assert count(new, "timer_started") == count(new, "timer_fired") == 1
        started, fired = first(new, "timer_started"), first(new, "timer_fired")
        assert started.event_id < point < fired.event_id
        assert ts(fired.event_time) >= ts(started.event_time) + 2.0
