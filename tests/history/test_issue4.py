"""Sticky execution (the Go client's way), RefreshWorkflowTasks and RestartWorkflowExecution."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cadence.api.v1 import (
    common_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
    workflow_pb2,
)

from cadence_fast import errors
from tests.history.harness import (
    DOMAIN,
    Env,
    assert_dense,
    complete_workflow,
    kinds,
    schedule_activity,
    seconds,
)

STICKY = tasklist_pb2.TASK_LIST_KIND_STICKY


def execution(wf: str, run_id: str = "") -> common_pb2.WorkflowExecution:
    return common_pb2.WorkflowExecution(workflow_id=wf, run_id=run_id)


async def complete_sticky(env: Env, token: bytes, decisions: list, sticky_list: str, s2s: float = 5) -> None:  # type: ignore[type-arg]
    await env.history.respond_decision_task_completed(
        service_worker_pb2.RespondDecisionTaskCompletedRequest(
            task_token=token,
            decisions=decisions,
            identity="go-worker",
            sticky_attributes=tasklist_pb2.StickyExecutionAttributes(
                worker_task_list=tasklist_pb2.TaskList(name=sticky_list, kind=STICKY),
                schedule_to_start_timeout=seconds(s2s),
            ),
        )
    )


async def test_sticky_decisions_carry_only_new_events_and_fall_back(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        # a sticky poller is waiting: the next decision goes to it with only the new events
        sticky_poll = asyncio.ensure_future(env.poll_decision("sticky-1", kind=STICKY))
        await asyncio.sleep(0.1)
        await complete_sticky(env, task.task_token, [], "sticky-1")
        await env.signal(wf, "s", '"x"')
        sticky_task = await sticky_poll
        assert sticky_task is not None
        assert kinds(sticky_task.history.events) == [
            "decision_task_completed", "workflow_execution_signaled", "decision_task_scheduled", "decision_task_started",
        ]  # fmt: skip
        assert sticky_task.history.events[0].event_id == 4
        scheduled = sticky_task.history.events[2].decision_task_scheduled_event_attributes
        assert scheduled.task_list.name == "sticky-1" and scheduled.task_list.kind == STICKY
        # the sticky worker stops polling: the schedule-to-start timeout moves the decision to the normal list
        await complete_sticky(env, sticky_task.task_token, [], "sticky-1", s2s=0.5)
        await env.signal(wf, "s2", '"y"')
        task = await env.poll_decision(timeout=10)
        assert task is not None
        events = list(task.history.events)
        assert_dense(events)
        timed_out = [e for e in events if e.HasField("decision_task_timed_out_event_attributes")]
        if timed_out:  # the sticky list still looked alive: Go's schedule-to-start fallback
            assert timed_out[-1].decision_task_timed_out_event_attributes.timeout_type == (
                workflow_pb2.TIMEOUT_TYPE_SCHEDULE_TO_START
            )
        assert events[-2].decision_task_scheduled_event_attributes.task_list.name == "tl" or timed_out
        # ResetStickyTaskList: later decisions use the normal list
        await complete_sticky(env, task.task_token, [], "sticky-1")
        await env.history.reset_sticky_task_list(
            env.domain,
            service_worker_pb2.ResetStickyTaskListRequest(domain=DOMAIN, workflow_execution=execution(wf)),
        )
        await env.signal(wf, "s3", '"z"')
        task = await env.poll_decision(timeout=5)
        assert task is not None and kinds(task.history.events)[0] == "workflow_execution_started"
        await env.complete_decision(task.task_token, [complete_workflow()])
    finally:
        await env.close()


async def test_refresh_tasks_redelivers_pending_work(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [schedule_activity("a", task_list="acts")])
        first = await env.poll_activity("acts")
        assert first is not None
        # refresh: the started activity gets its timers again, nothing is delivered twice
        await env.history.refresh_workflow_tasks(
            env.domain,
            service_workflow_pb2.RefreshWorkflowTasksRequest(domain=DOMAIN, workflow_execution=execution(wf)),
        )
        assert await env.poll_activity("acts", timeout=0.5) is None
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=first.task_token)
        )
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [complete_workflow()])
    finally:
        await env.close()


async def test_restart_reruns_from_the_start_request(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, first_run = await env.start(memo=common_pb2.Memo(fields={"m": common_pb2.Payload(data=b"1")}))
        resp = await env.history.restart_workflow(
            env.domain,
            service_workflow_pb2.RestartWorkflowExecutionRequest(
                domain=DOMAIN, workflow_execution=execution(wf, first_run), identity="ops", reason="again"
            ),
        )
        assert resp.run_id and resp.run_id != first_run
        assert kinds(await env.history_events(wf, first_run))[-1] == "workflow_execution_terminated"
        events = await env.history_events(wf)
        started = events[0].workflow_execution_started_event_attributes
        assert started.input.data == b'"in"' and started.memo.fields["m"].data == b"1"
    finally:
        await env.close()


async def test_reset_replays_to_the_point_and_continues(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, base_run = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(
            task.task_token,
            [schedule_activity("a", task_list="acts"), schedule_activity("b", task_list="slow")],
        )
        a = await env.poll_activity("acts")
        assert a is not None
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=a.task_token)
        )
        task = await env.poll_decision()
        assert task is not None
        reset_point = task.started_event_id + 1  # this decision's DecisionTaskCompleted
        await env.complete_decision(task.task_token, [])
        await env.signal(wf, "after", '"s"')
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [complete_workflow()])
        # a bad point is refused
        bad = service_workflow_pb2.ResetWorkflowExecutionRequest(
            domain=DOMAIN, workflow_execution=execution(wf, base_run), reason="oops", decision_finish_event_id=2,
            request_id="r1",
        )  # fmt: skip
        with pytest.raises(errors.BadRequestError):
            await env.history.reset_workflow(env.domain, bad)
        bad.decision_finish_event_id = reset_point
        resp = await env.history.reset_workflow(env.domain, bad)
        assert resp.run_id != base_run
        events = await env.history_events(wf)
        assert_dense(events)
        base_events = await env.history_events(wf, base_run)
        assert [e.SerializeToString() for e in events[: reset_point - 1]] == [
            e.SerializeToString() for e in base_events[: reset_point - 1]
        ]
        assert kinds(events)[reset_point - 1 :] == [
            "decision_task_failed", "workflow_execution_signaled", "decision_task_scheduled",
        ]  # fmt: skip
        failed = events[reset_point - 1].decision_task_failed_event_attributes
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_RESET_WORKFLOW
        assert failed.base_run_id == base_run and failed.new_run_id == resp.run_id
        # activity "b" was pending (not started) at the point: pending again in the new run, and delivered
        b = await env.poll_activity("slow")
        assert b is not None and b.activity_id == "b" and b.workflow_execution.run_id == resp.run_id
        task = await env.poll_decision()
        assert task is not None and task.workflow_execution.run_id == resp.run_id
        await env.complete_decision(task.task_token, [complete_workflow()])
        close = await env.close_event(wf)
        assert close is not None and close.HasField("workflow_execution_completed_event_attributes")
    finally:
        await env.close()


async def test_reset_fails_activities_started_before_the_point(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, base_run = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [schedule_activity("slow", task_list="acts")])
        running = await env.poll_activity("acts")
        assert running is not None
        await env.signal(wf, "note", '"x"')
        task = await env.poll_decision()
        assert task is not None
        point = task.started_event_id + 1
        await env.complete_decision(task.task_token, [])
        resp = await env.history.reset_workflow(
            env.domain,
            service_workflow_pb2.ResetWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=execution(wf, base_run),
                reason="redo",
                decision_finish_event_id=point,
            ),
        )
        events = await env.history_events(wf, resp.run_id)
        after = events[point - 1 :]
        assert kinds(after)[:2] == ["decision_task_failed", "activity_task_failed"]
        failed = after[1].activity_task_failed_event_attributes
        assert (
            failed.failure.reason == "redo"
            and failed.scheduled_event_id == 5
            and failed.started_event_id == 6
        )
        # the base run's worker can no longer report it
        with pytest.raises(errors.EntityNotExistsError):
            await env.history.respond_activity_task_completed(
                service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=running.task_token)
            )
    finally:
        await env.close()


async def test_failed_sticky_decision_goes_back_to_the_normal_list(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        sticky_poll = asyncio.ensure_future(env.poll_decision("sticky-2", kind=STICKY))
        await asyncio.sleep(0.1)
        await complete_sticky(env, task.task_token, [], "sticky-2", s2s=30)
        await env.signal(wf, "s", '"x"')
        sticky_task = await sticky_poll
        assert sticky_task is not None
        await env.history.respond_decision_task_failed(
            service_worker_pb2.RespondDecisionTaskFailedRequest(
                task_token=sticky_task.task_token,
                cause=workflow_pb2.DECISION_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            )
        )
        task = await env.poll_decision(timeout=5)  # the normal list, the whole history
        assert task is not None and task.attempt == 1
        assert kinds(task.history.events)[0] == "workflow_execution_started"
    finally:
        await env.close()


async def test_reset_retried_with_its_request_id_is_applied_once(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, base_run = await env.start()
        task = await env.poll_decision()
        assert task is not None
        point = task.started_event_id + 1
        await env.complete_decision(task.task_token, [])
        request = service_workflow_pb2.ResetWorkflowExecutionRequest(
            domain=DOMAIN, workflow_execution=execution(wf, base_run), reason="r", decision_finish_event_id=point,
            request_id="reset-1",
        )  # fmt: skip
        first = await env.history.reset_workflow(env.domain, request)
        again = await env.history.reset_workflow(env.domain, request)
        assert again.run_id == first.run_id
        assert kinds(await env.history_events(wf))[-1] == "decision_task_scheduled"  # not terminated
    finally:
        await env.close()
