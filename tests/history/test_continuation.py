"""Continue-as-new, workflow retry policies and cron schedules."""

from __future__ import annotations

from pathlib import Path

import pytest
from cadence.api.v1 import common_pb2, decision_pb2, service_workflow_pb2, workflow_pb2

from cadence_fast import errors
from tests.history.harness import Env, assert_dense, complete_workflow, kinds, payload, seconds


def fail_workflow(reason: str) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        fail_workflow_execution_decision_attributes=decision_pb2.FailWorkflowExecutionDecisionAttributes(
            failure=common_pb2.Failure(reason=reason, details=b"why")
        )
    )


async def test_continue_as_new_inherits_and_links(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, first_run = await env.start(
            memo=common_pb2.Memo(fields={"m": payload("1")}),
            header=common_pb2.Header(fields={"h": payload("2")}),
        )
        task = await env.poll_decision()
        assert task is not None
        can = decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
            workflow_type=common_pb2.WorkflowType(name="TestWorkflow"), input=payload('"next"')
        )
        await env.complete_decision(
            task.task_token,
            [decision_pb2.Decision(continue_as_new_workflow_execution_decision_attributes=can)],
        )
        old = await env.history_events(wf, first_run)
        closed = old[-1].workflow_execution_continued_as_new_event_attributes
        assert closed.initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
        assert closed.header.fields["h"].data == b"2" and closed.decision_task_completed_event_id == 4
        assert closed.execution_start_to_close_timeout.seconds == 60
        task = await env.poll_decision()
        assert task is not None and task.workflow_execution.run_id == closed.new_execution_run_id
        started = task.history.events[0].workflow_execution_started_event_attributes
        assert started.continued_execution_run_id == first_run
        assert started.first_execution_run_id == first_run
        assert started.input.data == b'"next"'
        assert started.header.fields["h"].data == b"2" and started.memo.fields["m"].data == b"1"
        await env.complete_decision(task.task_token, [complete_workflow()])
        close = await env.close_event(wf)  # the current run is the new one
        assert close is not None and close.HasField("workflow_execution_completed_event_attributes")
    finally:
        await env.close()


async def test_workflow_retry_policy(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        policy = common_pb2.RetryPolicy(
            initial_interval=seconds(0.2), backoff_coefficient=1.0, maximum_attempts=2,
            non_retryable_error_reasons=["fatal"],
        )  # fmt: skip
        wf, first_run = await env.start(retry_policy=policy)
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [fail_workflow("flaky")])
        old = await env.history_events(wf, first_run)
        closed = old[-1].workflow_execution_continued_as_new_event_attributes
        assert closed.initiator == workflow_pb2.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY
        assert closed.failure.reason == "flaky"
        task = await env.poll_decision(timeout=5)
        assert task is not None
        started = task.history.events[0].workflow_execution_started_event_attributes
        assert started.attempt == 1 and started.input.data == b'"in"'
        assert started.first_decision_task_backoff.ToNanoseconds() == 200_000_000
        await env.complete_decision(task.task_token, [fail_workflow("flaky")])  # attempts used up
        close = await env.close_event(wf)
        assert (
            close is not None and close.workflow_execution_failed_event_attributes.failure.reason == "flaky"
        )
        # a non-retryable reason fails at once
        wf2, _ = await env.start(retry_policy=policy)
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [fail_workflow("fatal")])
        close = await env.close_event(wf2)
        assert close is not None and close.HasField("workflow_execution_failed_event_attributes")
    finally:
        await env.close()


async def test_cron_runs_continue_with_last_result(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        with pytest.raises(errors.BadRequestError, match="CronSchedule"):
            await env.start(cron_schedule="not a cron")
        wf, first_run = await env.start(cron_schedule="@every 1s")
        task = await env.poll_decision(timeout=5)
        assert task is not None
        first_started = task.history.events[0].workflow_execution_started_event_attributes
        assert (
            first_started.cron_schedule == "@every 1s"
            and first_started.first_decision_task_backoff.seconds == 1
        )
        await env.complete_decision(task.task_token, [complete_workflow('"r1"')])
        old = await env.history_events(wf, first_run)
        assert old[-1].workflow_execution_continued_as_new_event_attributes.initiator == (
            workflow_pb2.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        )
        task = await env.poll_decision(timeout=5)
        assert task is not None
        started = task.history.events[0].workflow_execution_started_event_attributes
        assert started.last_completion_result.data == b'"r1"'
        assert_dense(task.history.events)
        await env.history.terminate_workflow(
            env.domain,
            service_workflow_pb2.TerminateWorkflowExecutionRequest(
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=wf)
            ),
        )
        assert kinds(await env.history_events(wf))[-1] == "workflow_execution_terminated"
    finally:
        await env.close()
