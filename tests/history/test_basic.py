"""Start -> decision -> activity -> complete, through the engine with a real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cadence.api.v1 import service_worker_pb2

from tests.history.harness import Env, assert_dense, complete_workflow, kinds, payload, schedule_activity


async def test_start_decision_activity_complete(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, run_id = await env.start()
        task = await env.poll_decision()
        assert task is not None
        assert task.workflow_execution.run_id == run_id
        assert kinds(task.history.events) == [
            "workflow_execution_started", "decision_task_scheduled", "decision_task_started",
        ]  # fmt: skip
        assert task.started_event_id == 3 and task.next_event_id == 4
        assert task.workflow_execution_task_list.name == "tl"
        await env.complete_decision(task.task_token, [schedule_activity("0")])

        act = await env.poll_activity()
        assert act is not None
        assert act.activity_id == "0" and act.input.data == b'"0"' and act.attempt == 0
        assert act.header.fields["k"].data == b"v"
        assert act.workflow_domain == "history-tests" and act.workflow_type.name == "TestWorkflow"
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(
                task_token=act.task_token, result=payload("42")
            )
        )
        task = await env.poll_decision()
        assert task is not None
        assert task.previous_started_event_id.value == 3
        await env.complete_decision(task.task_token, [complete_workflow()])
        close = await env.close_event(wf)
        assert (
            close is not None
            and close.WhichOneof("attributes") == "workflow_execution_completed_event_attributes"
        )
        events = await env.history_events(wf)
        assert_dense(events)
        assert kinds(events) == [
            "workflow_execution_started", "decision_task_scheduled", "decision_task_started",
            "decision_task_completed", "activity_task_scheduled", "activity_task_started",
            "activity_task_completed", "decision_task_scheduled", "decision_task_started",
            "decision_task_completed", "workflow_execution_completed",
        ]  # fmt: skip
    finally:
        await env.close()


async def test_pollers_waiting_before_start_get_the_first_decision(tmp_path: Path) -> None:
    """Sync match: the queue dispatches a new run before its start call resumes; the run's
    state the poll recorded must be the one that stays cached."""
    env = await Env(tmp_path / "h.db").open()
    try:
        for i in range(3):
            polls = [asyncio.ensure_future(env.poll_decision(timeout=3)) for _ in range(2)]
            await asyncio.sleep(0.05)
            wf, run_id = await env.start(f"sync-{i}")
            done, pending = await asyncio.wait(polls, return_when=asyncio.FIRST_COMPLETED)
            task = done.pop().result()
            assert task is not None and task.workflow_execution.run_id == run_id
            await env.complete_decision(task.task_token, [complete_workflow()])
            close = await env.close_event(wf)
            assert close is not None and close.HasField("workflow_execution_completed_event_attributes")
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await env.close()
