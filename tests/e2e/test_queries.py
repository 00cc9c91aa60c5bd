"""Issue 4, queries, answered by a real official-client worker through query tasks:
before the first decision completes, before and after signals, with arguments, the
built-in `__query_types` listing, a failing handler and an unknown type
(QueryFailedError), closed runs, and query_reject_condition; and, raw, a query task
answered alongside a started decision."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import Payload
from cadence.api.v1.query_pb2 import QueryRejectCondition, QueryResultType, WorkflowQueryResult
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.error import QueryFailedError
from cadence.worker import Worker
from issue4_helpers import complete_decision, poll_until_task, registry, respond, running, wait_settled
from workflows import Env, finish, get_history, kind, kinds, result

NOT_OPEN = QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN
NOT_COMPLETED_CLEANLY = QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY


async def status(
    env: Env, workflow_id: str, prefix: str, upper: bool = False, run_id: str = "", **kw: Any
) -> Any:
    return await env.client.query_workflow(
        workflow_id, run_id, "status", prefix, upper, result_type=str, **kw
    )


async def test_query_before_and_after_signals_with_arguments(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("I4Queryable")
        wid = execution.workflow_id
        # No decision has run yet: the worker that starts now answers from
        # [WorkflowExecutionStarted, DecisionTaskScheduled] with a fresh workflow object.
        async with Worker(env.client, env.task_list, registry):
            assert await status(env, wid, "early") == "early:  done=False"
            await wait_settled(env.client, execution)
            assert await env.client.query_workflow(wid, "", "count", result_type=int) == 0

            for item in ("a", "b"):
                await env.client.signal_workflow(wid, "", "add", item)
            before = await wait_settled(env.client, execution, signals=2)
            # Arguments reach the handler, in order and typed.
            assert await status(env, wid, "now") == "now: a,b done=False"
            assert await status(env, wid, "loud", True) == "LOUD: A,B DONE=FALSE"
            assert await env.client.query_workflow(wid, execution.run_id, "count", result_type=int) == 2
            # Queries write no events.
            assert await get_history(env.client, execution) == before

            await env.client.signal_workflow(wid, "", "add", "c")
            await wait_settled(env.client, execution, signals=3)
            assert await status(env, wid, "later") == "later: a,b,c done=False"
            await env.client.signal_workflow(wid, "", "finish", False)
            assert await result(env.client, execution, int) == 3


async def test_query_types_listing_failing_handler_and_unknown_type(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4Queryable")
        wid = execution.workflow_id
        await wait_settled(env.client, execution)
        types = await env.client.query_workflow(wid, "", "__query_types", result_type=list[str])
        assert set(types) == {"status", "count", "broken", "__query_types"}

        with pytest.raises(QueryFailedError) as info:
            await env.client.query_workflow(wid, "", "broken")
        assert "this query handler is broken" in str(info.value)
        with pytest.raises(QueryFailedError) as info:
            await env.client.query_workflow(wid, "", "no-such-query")
        assert "no-such-query" in str(info.value)

        # A failed query harms nothing: the run still answers and completes.
        assert await status(env, wid, "still") == "still:  done=False"
        await env.client.signal_workflow(wid, "", "finish", False)
        assert await result(env.client, execution, int) == 0


async def test_query_closed_runs_and_reject_conditions(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        completed = await env.start("I4Queryable")
        failed = await env.start("I4Queryable")
        for execution, fail in ((completed, False), (failed, True)):
            await env.client.signal_workflow(execution.workflow_id, "", "add", "x")
            # While open, neither condition rejects.
            await wait_settled(env.client, execution, signals=1)
            assert await status(env, execution.workflow_id, "open", query_reject_condition=NOT_OPEN) == (
                "open: x done=False"
            )
            await env.client.signal_workflow(execution.workflow_id, "", "finish", fail)
            close, _ = await finish(env.client, execution)
            assert kind(close) == ("workflow_execution_failed" if fail else "workflow_execution_completed")

        # Closed runs are still queried by replaying their whole history ...
        assert await status(env, completed.workflow_id, "closed") == "closed: x done=True"
        assert await status(env, failed.workflow_id, "closed", run_id=failed.run_id) == "closed: x done=True"
        # ... unless the reject condition says no: NOT_OPEN rejects every closed run,
        with pytest.raises(QueryFailedError) as info:
            await status(env, completed.workflow_id, "no", query_reject_condition=NOT_OPEN)
        assert f"close_status={workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED}" in str(info.value)
        # NOT_COMPLETED_CLEANLY only those that did not complete.
        assert (
            await status(env, completed.workflow_id, "clean", query_reject_condition=NOT_COMPLETED_CLEANLY)
            == "clean: x done=True"
        )
        with pytest.raises(QueryFailedError) as info:
            await status(env, failed.workflow_id, "no", query_reject_condition=NOT_COMPLETED_CLEANLY)
        assert f"close_status={workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_FAILED}" in str(info.value)


async def test_query_task_alongside_a_started_decision(server: Any, domain: str) -> None:
    """Raw, the Go worker's way: while a decision task is started (held by one poller), a
    query is still handed to another poller as a query task (full history, the query, a
    fresh token) and answered with RespondQueryTaskCompleted; it writes no event."""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        decision = await poll_until_task(env.client, normal)
        assert not decision.HasField("query")
        asking = asyncio.ensure_future(
            env.client.query_workflow(execution.workflow_id, "", "anything", "x", result_type=str)
        )
        query_task = await poll_until_task(env.client, normal)
        assert query_task.HasField("query") and query_task.query.query_type == "anything"
        assert query_task.task_token != decision.task_token
        assert query_task.workflow_execution.run_id == execution.run_id
        assert kinds(query_task.history.events)[0] == "workflow_execution_started"
        await env.client.worker_stub.RespondQueryTaskCompleted(
            W.RespondQueryTaskCompletedRequest(
                task_token=query_task.task_token,
                result=WorkflowQueryResult(
                    result_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED, answer=Payload(data=b'"from go"')
                ),
            ),
            timeout=10,
        )
        assert await asking == "from go"
        # A FAILED answer is the client's QueryFailedError with the worker's message.
        asking = asyncio.ensure_future(env.client.query_workflow(execution.workflow_id, "", "anything"))
        query_task = await poll_until_task(env.client, normal)
        await env.client.worker_stub.RespondQueryTaskCompleted(
            W.RespondQueryTaskCompletedRequest(
                task_token=query_task.task_token,
                result=WorkflowQueryResult(
                    result_type=QueryResultType.QUERY_RESULT_TYPE_FAILED, error_message="no such query here"
                ),
            ),
            timeout=10,
        )
        with pytest.raises(QueryFailedError) as info:
            await asking
        assert "no such query here" in str(info.value)
        # The held decision is still good.
        await respond(env.client, decision, [complete_decision()])
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed", kinds(events)
