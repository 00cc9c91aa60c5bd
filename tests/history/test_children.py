"""Child workflows, signals and cancel requests to other workflows, parent close policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadence.api.v1 import common_pb2, decision_pb2, tasklist_pb2, workflow_pb2

from tests.history.harness import DOMAIN, Env, assert_dense, complete_workflow, kinds, payload, seconds


def start_child(
    workflow_id: str, policy: int = workflow_pb2.PARENT_CLOSE_POLICY_TERMINATE
) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        start_child_workflow_execution_decision_attributes=decision_pb2.StartChildWorkflowExecutionDecisionAttributes(
            domain=DOMAIN,
            workflow_id=workflow_id,
            workflow_type=common_pb2.WorkflowType(name="Child"),
            task_list=tasklist_pb2.TaskList(name="children"),
            input=payload('"child-in"'),
            execution_start_to_close_timeout=seconds(60),
            task_start_to_close_timeout=seconds(10),
            parent_close_policy=policy,  # type: ignore[arg-type]
            header=common_pb2.Header(fields={"h": payload("1")}),
        )
    )


def signal_external(workflow_id: str, child_only: bool = False) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        signal_external_workflow_execution_decision_attributes=(
            decision_pb2.SignalExternalWorkflowExecutionDecisionAttributes(
                domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id),
                signal_name="hello", input=payload('"x"'), control=b"1", child_workflow_only=child_only,
            )
        )
    )  # fmt: skip


def cancel_external(workflow_id: str) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        request_cancel_external_workflow_execution_decision_attributes=(
            decision_pb2.RequestCancelExternalWorkflowExecutionDecisionAttributes(
                domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id),
                child_workflow_only=True,
            )
        )
    )  # fmt: skip


async def decision_with(env: Env, *wanted: str, task_list: str = "tl") -> Any:
    """The next decision task whose history holds every wanted event kind (others answered empty)."""
    while True:
        task = await env.poll_decision(task_list)
        assert task is not None, f"no decision task with {wanted}"
        if all(w in kinds(task.history.events) for w in wanted):
            return task
        await env.complete_decision(task.task_token, [])


async def test_child_lifecycle_signal_and_cancel(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        parent, parent_run = await env.start("parent")
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [start_child("child-1"), signal_external("nobody")])
        # the parent learns the child started and the signal failed
        task = await env.poll_decision()
        assert task is not None and task.workflow_execution.workflow_id == "parent"
        got = kinds(task.history.events)
        assert (
            "child_workflow_execution_started" in got and "signal_external_workflow_execution_failed" in got
        )
        started = next(
            e for e in task.history.events if e.HasField("child_workflow_execution_started_event_attributes")
        )
        assert started.child_workflow_execution_started_event_attributes.initiated_event_id == 5
        await env.complete_decision(
            task.task_token, [signal_external("child-1", child_only=True), cancel_external("child-1")]
        )
        # the parent records the outcomes of both
        task = await decision_with(
            env, "external_workflow_execution_signaled", "external_workflow_execution_cancel_requested"
        )
        # the child: started with its parent linked, then the signal and the cancel request
        child_task = await env.poll_decision("children")
        assert child_task is not None
        child_started = child_task.history.events[0].workflow_execution_started_event_attributes
        assert child_started.parent_execution_info.workflow_execution.run_id == parent_run
        assert child_started.parent_execution_info.initiated_id == 5
        assert child_started.header.fields["h"].data == b"1"
        child_events = await env.history_events("child-1")
        assert "workflow_execution_signaled" in kinds(child_events)
        cancel = next(
            e for e in child_events if e.HasField("workflow_execution_cancel_requested_event_attributes")
        )
        assert (
            cancel.workflow_execution_cancel_requested_event_attributes.external_execution_info.workflow_execution.workflow_id
            == "parent"
        )
        # the child completes: the parent gets ChildWorkflowExecutionCompleted and a decision
        await env.complete_decision(child_task.task_token, [complete_workflow('"child-out"')])
        await env.complete_decision(task.task_token, [])
        task = await decision_with(env, "child_workflow_execution_completed")
        done = next(
            e
            for e in task.history.events
            if e.HasField("child_workflow_execution_completed_event_attributes")
        )
        attrs = done.child_workflow_execution_completed_event_attributes
        assert (
            attrs.result.data == b'"child-out"'
            and attrs.initiated_event_id == 5
            and attrs.started_event_id > 5
        )
        await env.complete_decision(task.task_token, [complete_workflow()])
        assert_dense(await env.history_events(parent))
    finally:
        await env.close()


async def test_child_reuse_conflict_and_parent_close_policy(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        await env.start("taken", task_list="other")
        await env.start("parent")
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(
            task.task_token,
            [
                start_child("taken"),
                start_child("kid-terminate"),
                start_child("kid-abandon", workflow_pb2.PARENT_CLOSE_POLICY_ABANDON),
            ],
        )
        task = await decision_with(
            env, "start_child_workflow_execution_failed", "child_workflow_execution_started"
        )
        while kinds(task.history.events).count("child_workflow_execution_started") < 2:
            await env.complete_decision(task.task_token, [])
            task = await decision_with(env, "child_workflow_execution_started")
        failed = next(
            e
            for e in task.history.events
            if e.HasField("start_child_workflow_execution_failed_event_attributes")
        )
        assert failed.start_child_workflow_execution_failed_event_attributes.cause == (
            workflow_pb2.CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_RUNNING
        )
        await env.complete_decision(task.task_token, [complete_workflow()])
        close = await env.close_event("kid-terminate")
        assert close is not None and close.HasField("workflow_execution_terminated_event_attributes")
        assert kinds(await env.history_events("kid-abandon"))[-1] != "workflow_execution_terminated"
    finally:
        await env.close()
