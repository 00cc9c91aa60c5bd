"""Issue 4, continue-as-new, with a real official-client worker: a chain of runs where the
header (set by a context propagator, as the client's context_propagation example does),
the memo, the task list and the timeouts survive each continuation, and every new run's
Started event is linked to the run before it; a continuation may change the type and
timeouts; a continued (closed) run can still be queried."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cadence.api.v1 import decision_pb2, workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution, WorkflowType
from cadence.api.v1.query_pb2 import QueryRejectCondition
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.error import QueryFailedError
from issue4_helpers import (
    TENANT,
    attrs,
    complete_decision,
    first,
    next_run,
    poll_until_task,
    respond,
    running,
    started_attrs,
    tenant_propagator,
    ts,
)
from workflows import finish, get_history, kind, kinds, result

RUN_SECONDS = 45


async def test_continue_as_new_keeps_header_memo_and_timeouts(server: Any, domain: str) -> None:
    async with running(server.address, domain, propagators=(tenant_propagator,)) as env:
        token = TENANT.set("acme")
        try:
            execution = await env.start(
                "I4HeaderCountdown", 2, run_seconds=RUN_SECONDS, memo={"owner": "team-a"}
            )
        finally:
            TENANT.reset(token)

        runs = [execution]
        for n in (2, 1, 0):
            run = runs[-1]
            close, events = await finish(env.client, run)
            started = started_attrs(events)
            # Every run: the header, memo, task list, type and timeouts of the first.
            assert started.header.fields["i4-tenant"].data == b"acme", n
            assert started.memo.fields["owner"].data == b'"team-a"', n
            assert started.task_list.name == env.task_list
            assert started.workflow_type.name == "I4HeaderCountdown"
            assert ts(started.execution_start_to_close_timeout) == RUN_SECONDS
            assert ts(started.task_start_to_close_timeout) == 5
            assert env.client.data_converter.from_data(started.input, [int]) == [n]
            assert started.first_execution_run_id == execution.run_id
            if run is execution:
                assert not started.continued_execution_run_id
            else:
                # Linked to the run it continues.
                assert started.continued_execution_run_id == runs[-2].run_id
                assert started.initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
            if n == 0:
                assert kind(close) == "workflow_execution_completed", kinds(events)
                break
            assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
            continued = close.workflow_execution_continued_as_new_event_attributes
            assert continued.initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
            assert continued.header.fields["i4-tenant"].data == b"acme"
            assert continued.workflow_type.name == "I4HeaderCountdown"
            assert continued.task_list.name == env.task_list
            assert ts(continued.execution_start_to_close_timeout) == RUN_SECONDS
            assert (
                continued.decision_task_completed_event_id
                == first(events, "decision_task_completed").event_id
            )
            assert env.client.data_converter.from_data(continued.input, [int]) == [n - 1]
            runs.append(next_run(close, run))

        # The last run's workflow code and its activity both saw the tenant.
        assert await result(env.client, runs[-1], str) == "acme/acme"
        assert len({r.run_id for r in runs}) == 3
        # The id's current run is the last one.
        current = await get_history(env.client, WorkflowExecution(workflow_id=execution.workflow_id))
        assert current == await get_history(env.client, runs[-1])
        activity_header = attrs(first(current, "activity_task_scheduled")).header
        assert activity_header.fields["i4-tenant"].data == b"acme"


async def test_continue_as_new_without_a_propagator_has_no_header(server: Any, domain: str) -> None:
    """The header is the run's, not invented: a chain started without one carries none."""
    async with running(server.address, domain) as env:
        execution = await env.start(
            "I4HeaderCountdown", 1, execution_start_to_close_timeout=timedelta(seconds=30)
        )
        close, events = await finish(env.client, execution)
        assert "i4-tenant" not in started_attrs(events).header.fields
        second = next_run(close, execution)
        assert await result(env.client, second, str) == "no tenant/no tenant"
        assert "i4-tenant" not in started_attrs(await get_history(env.client, second)).header.fields


async def test_continue_as_new_with_another_type_and_timeout(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4ContinueAs", "I4Echo", "carried", 30, run_seconds=RUN_SECONDS)
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
        continued = close.workflow_execution_continued_as_new_event_attributes
        assert continued.workflow_type.name == "I4Echo"
        assert ts(continued.execution_start_to_close_timeout) == 30
        second = next_run(close, execution)
        # The overrides apply; what was not overridden is inherited.
        assert await result(env.client, second, str) == "carried"
        started = started_attrs(await get_history(env.client, second))
        assert started.workflow_type.name == "I4Echo"
        assert ts(started.execution_start_to_close_timeout) == 30
        assert ts(started.task_start_to_close_timeout) == 5
        assert started.task_list.name == env.task_list
        assert started.continued_execution_run_id == execution.run_id


async def test_query_a_continued_run(server: Any, domain: str) -> None:
    """A run closed by continue-as-new is still queried by its run id (replayed), unless
    the reject condition refuses closed runs."""
    async with running(server.address, domain) as env:
        execution = await env.start("I4HeaderCountdown", 1)
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new"
        types = await env.client.query_workflow(
            execution.workflow_id, execution.run_id, "__query_types", result_type=list[str]
        )
        assert types == ["__query_types"]
        with pytest.raises(QueryFailedError) as info:
            await env.client.query_workflow(
                execution.workflow_id,
                execution.run_id,
                "__query_types",
                query_reject_condition=QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN,
            )
        status = workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_CONTINUED_AS_NEW
        assert f"close_status={status}" in str(info.value)
        await result(env.client, next_run(close, execution), str)


async def test_continue_as_new_with_a_signal_buffered_is_refused(server: Any, domain: str) -> None:
    """A signal that arrives while the decision continuing as new is running must not be
    lost with the old run: that decision fails (UNHANDLED_DECISION) and the next one sees
    the signal."""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        await env.client.signal_workflow(execution.workflow_id, "", "late", "do not lose me")
        can = decision_pb2.Decision(
            continue_as_new_workflow_execution_decision_attributes=decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
                workflow_type=WorkflowType(name="I4HandDriven"), task_list=normal
            )
        )
        await respond(env.client, task, [can])
        retry = await poll_until_task(env.client, normal)
        ks = kinds(retry.history.events)
        assert "workflow_execution_continued_as_new" not in ks
        failed = attrs(first(list(retry.history.events), "decision_task_failed"))
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
        assert ks.index("decision_task_failed") < ks.index("workflow_execution_signaled")
        await respond(env.client, retry, [complete_decision()])
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed", kinds(events)


async def test_continue_as_new_keeps_the_search_attributes(server: Any, domain: str) -> None:
    """Search attributes upserted by a run are the next run's too (the client's
    ContinueAsNew decision carries none: the server inherits them)."""
    async with running(server.address, domain) as env:
        execution = await env.start("I4UpsertThenContinue", True)
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
        upserted = attrs(first(events, "upsert_workflow_search_attributes")).search_attributes
        second = next_run(close, execution)
        assert await result(env.client, second, str) == "second run"
        started = started_attrs(await get_history(env.client, second))
        assert (
            started.search_attributes.indexed_fields["CustomKeywordField"]
            == (upserted.indexed_fields["CustomKeywordField"])
        )


async def test_continue_as_new_with_a_backoff(server: Any, domain: str) -> None:
    """Raw (a Go worker may ask for it): ContinueAsNew with backoff_start_interval starts
    the new run at once but schedules its first decision only after the backoff."""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        attributes = decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
            workflow_type=WorkflowType(name="I4HandDriven"), task_list=normal
        )
        attributes.backoff_start_interval.FromTimedelta(timedelta(seconds=2))
        await respond(
            env.client,
            task,
            [decision_pb2.Decision(continue_as_new_workflow_execution_decision_attributes=attributes)],
        )
        close, _ = await finish(env.client, execution)
        second = next_run(close, execution)
        events = await get_history(env.client, second)
        assert ts(started_attrs(events).first_decision_task_backoff) == 2
        task = await poll_until_task(env.client, normal)
        assert task.workflow_execution.run_id == second.run_id
        events = list(task.history.events)
        scheduled = first(events, "decision_task_scheduled")
        assert ts(scheduled.event_time) >= ts(events[0].event_time) + 2 - 0.001
        await respond(env.client, task, [complete_decision()])
        close, _ = await finish(env.client, second)
        assert kind(close) == "workflow_execution_completed"
