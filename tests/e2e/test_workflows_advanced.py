"""Issue-4 features through the official client on a real server: queries (running,
before the first decision completes, closed, unknown type, no worker), timers, child
workflows, continue-as-new and activity retries."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import TerminateWorkflowExecutionRequest
from cadence.error import CadenceRpcError, QueryFailedError
from cadence.worker import Worker
from workflows import (
    TENANT,
    finish,
    get_history,
    kind,
    kinds,
    last_run,
    registry,
    result,
    running,
    tenant_propagator,
    wait_for_event,
)

T = workflow_pb2


def ts(t: Any) -> float:
    return t.seconds + t.nanos / 1e9


async def test_query_a_running_then_closed_workflow(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        client = env.client
        execution = await env.start("QueryableWorkflow")
        await wait_for_event(client, execution, "decision_task_completed")
        await client.signal_workflow(execution.workflow_id, "", "add", "a")
        await client.signal_workflow(execution.workflow_id, "", "add", "b")
        # Let the decision of the signals finish, so that nothing but the query runs.
        for _ in range(100):
            ks = kinds(await get_history(client, execution))
            if ks.count("workflow_execution_signaled") == 2 and ks[-1] == "decision_task_completed":
                break
            await asyncio.sleep(0.05)
        answer = await client.query_workflow(execution.workflow_id, "", "status", "now", result_type=str)
        assert answer == "now: a,b done=False"
        before = await get_history(client, execution)
        assert await client.query_workflow(
            execution.workflow_id, execution.run_id, "status", "x", result_type=str
        )
        # A query writes no events.
        assert len(await get_history(client, execution)) == len(before)

        await client.signal_workflow(execution.workflow_id, "", "finish")
        assert await result(client, execution, int) == 2
        closed = await client.query_workflow(
            execution.workflow_id, execution.run_id, "status", "end", result_type=str
        )
        assert closed == "end: a,b done=True"


async def test_query_of_an_unknown_type_fails(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("QueryableWorkflow")
        await wait_for_event(env.client, execution, "decision_task_completed")
        with pytest.raises(QueryFailedError) as info:
            await env.client.query_workflow(execution.workflow_id, "", "no-such-query")
        assert "no-such-query" in str(info.value)
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        await result(env.client, execution, int)


async def test_query_before_the_first_decision_completes(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("QueryableWorkflow")
        # Nobody has run a decision yet; a worker that starts now answers the query
        # from [WorkflowExecutionStarted, DecisionTaskScheduled].
        async with Worker(env.client, env.task_list, registry):
            answer = await env.client.query_workflow(
                execution.workflow_id, "", "status", "early", result_type=str
            )
            assert answer == "early:  done=False"
            await env.client.signal_workflow(execution.workflow_id, "", "finish")
            assert await result(env.client, execution, int) == 0


async def test_query_with_no_worker_fails_cleanly(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("QueryableWorkflow")
        # The client's deadline is 60 s; the server must give up well before it.
        with pytest.raises(CadenceRpcError):
            await env.client.query_workflow(execution.workflow_id, "", "status", "anyone?")
        await env.client.workflow_stub.TerminateWorkflowExecution(_terminate(domain, execution), timeout=10)


def _terminate(domain: str, execution: WorkflowExecution) -> Any:
    return TerminateWorkflowExecutionRequest(domain=domain, workflow_execution=execution, reason="cleanup")


async def test_timer(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("TimerWorkflow", 1.5)
        assert await result(env.client, execution, str) == "woke up"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        started = events[ks.index("timer_started")]
        fired = events[ks.index("timer_fired")]
        assert fired.timer_fired_event_attributes.timer_id == started.timer_started_event_attributes.timer_id
        assert fired.timer_fired_event_attributes.started_event_id == started.event_id
        # Never before TimerStarted.event_time + duration.
        assert ts(fired.event_time) >= ts(started.event_time) + 1.5


async def test_child_workflow(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("ParentWorkflow", "hi")
        assert await result(env.client, execution, str) == "child said hi"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        initiated = events[ks.index("start_child_workflow_execution_initiated")]
        started = events[
            ks.index("child_workflow_execution_started")
        ].child_workflow_execution_started_event_attributes
        completed = events[ks.index("child_workflow_execution_completed")]
        assert started.initiated_event_id == initiated.event_id
        assert (
            completed.child_workflow_execution_completed_event_attributes.initiated_event_id
            == initiated.event_id
        )
        child = started.workflow_execution
        assert (
            child.workflow_id
            == initiated.start_child_workflow_execution_initiated_event_attributes.workflow_id
        )
        child_events = await get_history(env.client, child)
        parent_info = child_events[0].workflow_execution_started_event_attributes.parent_execution_info
        assert parent_info.workflow_execution.run_id == execution.run_id


async def test_continue_as_new(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("CountdownWorkflow", 2)
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new"
        attrs = close.workflow_execution_continued_as_new_event_attributes
        assert attrs.initiator == T.CONTINUE_AS_NEW_INITIATOR_DECIDER
        assert attrs.task_list.name == env.task_list
        second = WorkflowExecution(workflow_id=execution.workflow_id, run_id=attrs.new_execution_run_id)
        started = (await get_history(env.client, second))[0].workflow_execution_started_event_attributes
        assert started.continued_execution_run_id == execution.run_id
        assert started.first_execution_run_id == execution.run_id
        assert env.client.data_converter.from_data(started.input, [int]) == [1]
        # Two continuations later the chain ends in a completed run.
        final = await last_run(env.client, execution)
        assert final.run_id not in (execution.run_id, second.run_id)
        assert await result(env.client, final, str) == "liftoff"
        # The id's current run is that last one.
        current = WorkflowExecution(workflow_id=execution.workflow_id)
        assert await get_history(env.client, current) == await get_history(env.client, final)


async def test_activity_retry_then_success(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("RetryingActivityWorkflow", 2, 5)
        assert await result(env.client, execution, int) == 2
        events = await get_history(env.client, execution)
        # Intermediate failures write no events; Started records the final attempt.
        assert "activity_task_failed" not in kinds(events)
        started = next(
            e for e in events if kind(e) == "activity_task_started"
        ).activity_task_started_event_attributes
        assert started.attempt == 2


async def test_activity_retry_exhausted(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("RetryingActivityWorkflow", 10, 2)
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_failed"
        failed = next(
            e for e in events if kind(e) == "activity_task_failed"
        ).activity_task_failed_event_attributes
        assert failed.failure.reason == "ActivityBoom"
        assert "attempt 1 fails" in failed.failure.details.decode()


# --- more of issue 4: the rest of its e2e list ----------------------------------------


async def test_cancelled_timer(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("CancelTimerWorkflow")
        await wait_for_event(env.client, execution, "timer_started")
        await env.client.signal_workflow(execution.workflow_id, "", "cancel")
        assert await result(env.client, execution, str) == "timer cancelled"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        assert "timer_fired" not in ks
        canceled = events[ks.index("timer_canceled")].timer_canceled_event_attributes
        started = events[ks.index("timer_started")]
        assert canceled.timer_id == started.timer_started_event_attributes.timer_id
        assert canceled.started_event_id == started.event_id


async def test_non_retryable_activity_failure(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("NonRetryableActivityWorkflow")
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_failed"
        started = next(
            e for e in events if kind(e) == "activity_task_started"
        ).activity_task_started_event_attributes
        assert started.attempt == 0
        failed = next(
            e for e in events if kind(e) == "activity_task_failed"
        ).activity_task_failed_event_attributes
        assert failed.failure.reason == "ActivityBoom"


async def test_workflow_retried_once_then_failed(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        policy = {"initial_interval": timedelta(seconds=1), "maximum_attempts": 2}
        execution = await env.start("FailingWorkflow", "again and again", retry_policy=policy)
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new"
        attrs = close.workflow_execution_continued_as_new_event_attributes
        assert attrs.initiator == T.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY
        assert attrs.failure.reason == "WorkflowBoom"
        final = await last_run(env.client, execution)
        assert final.run_id == attrs.new_execution_run_id
        close, events = await finish(env.client, final)
        assert kind(close) == "workflow_execution_failed"
        started = events[0].workflow_execution_started_event_attributes
        assert started.attempt == 1
        assert started.first_decision_task_backoff.seconds >= 1
        assert started.continued_execution_run_id == execution.run_id


async def test_non_retryable_workflow_failure_is_not_retried(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        policy = {
            "initial_interval": timedelta(seconds=1),
            "maximum_attempts": 5,
            "non_retryable_error_reasons": ["WorkflowBoom"],
        }
        execution = await env.start("FailingWorkflow", "fatal", retry_policy=policy)
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_failed"


async def test_continue_as_new_keeps_the_header(server: Any, domain: str) -> None:
    async with running(server.address, domain, context_propagators=(tenant_propagator,)) as env:
        token = TENANT.set("acme")
        try:
            execution = await env.start("HeaderCountdownWorkflow", 2)
        finally:
            TENANT.reset(token)
        final = await last_run(env.client, execution)
        assert await result(env.client, final, str) == "acme/acme"
        for run in (execution, final):
            started = (await get_history(env.client, run))[0].workflow_execution_started_event_attributes
            assert started.header.fields["tenant"].data == b"acme"


async def test_child_workflow_signalled_and_external_signal(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        parent = await env.start("SignalChildWorkflow", "hello child")
        assert await result(env.client, parent, list[str]) == ["hello child"]
        events = await get_history(env.client, parent)
        ks = kinds(events)
        initiated = events[ks.index("signal_external_workflow_execution_initiated")]
        signaled = events[ks.index("external_workflow_execution_signaled")]
        assert (
            signaled.external_workflow_execution_signaled_event_attributes.initiated_event_id
            == initiated.event_id
        )

        target = await env.start("SignalCollectorWorkflow", 1)
        sender = await env.start("SignalExternalWorkflow", target.workflow_id, "from a stranger")
        assert await result(env.client, sender, str) == "sent"
        assert await result(env.client, target, list[str]) == ["from a stranger"]


async def test_query_types_and_a_failing_handler(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("QueryableWorkflow")
        await wait_for_event(env.client, execution, "decision_task_completed")
        types = await env.client.query_workflow(
            execution.workflow_id, "", "__query_types", result_type=list[str]
        )
        assert set(types) >= {"status", "broken"}
        with pytest.raises(QueryFailedError) as info:
            await env.client.query_workflow(execution.workflow_id, "", "broken")
        assert "this handler is broken" in str(info.value)
        await env.client.signal_workflow(execution.workflow_id, "", "finish")
        await result(env.client, execution, int)


async def test_cron_schedule(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("EchoWorkflow", "tick", cron_schedule="@every 1s")
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new"
        attrs = close.workflow_execution_continued_as_new_event_attributes
        assert attrs.initiator == T.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        second = WorkflowExecution(workflow_id=execution.workflow_id, run_id=attrs.new_execution_run_id)
        close, events = await finish(env.client, second)
        assert kind(close) == "workflow_execution_continued_as_new"
        started = events[0].workflow_execution_started_event_attributes
        assert started.cron_schedule == "@every 1s"
        assert started.last_completion_result.data == b'"tick"'
        await env.client.workflow_stub.TerminateWorkflowExecution(
            _terminate(domain, WorkflowExecution(workflow_id=execution.workflow_id)), timeout=10
        )
