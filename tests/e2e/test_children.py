"""Issue 4, child workflows and external signals, with a real official-client worker:
a child executed (its result returned to the parent), started, signalled by the parent,
a child that fails, times out, is terminated or is cancelled by the parent (each reported
to the parent by its Child* event), a reuse conflict, an unrelated workflow signalled via
signal_external_workflow (and one that does not exist), and the parent close policies
TERMINATE / REQUEST_CANCEL / ABANDON applied when the parent closes."""

from __future__ import annotations

from typing import Any

from cadence.api.v1 import decision_pb2, workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import DescribeWorkflowExecutionRequest
from cadence.api.v1.tasklist_pb2 import TaskList
from issue4_helpers import (
    TENANT,
    attrs,
    count,
    first,
    poll_until_task,
    respond,
    running,
    started_attrs,
    tenant_propagator,
    terminate,
    wait_until,
)
from workflows import finish, get_history, kind, kinds, result, wait_close

T = workflow_pb2


async def test_child_executed_and_its_result_returned(server: Any, domain: str) -> None:
    async with running(server.address, domain, propagators=(tenant_propagator,)) as env:
        token = TENANT.set("acme")
        try:
            execution = await env.start("I4Parent", "hi")
        finally:
            TENANT.reset(token)
        assert await result(env.client, execution, str) == "child said hi"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        assert ks.index("start_child_workflow_execution_initiated") < ks.index(
            "child_workflow_execution_started"
        )
        assert ks.index("child_workflow_execution_started") < ks.index("child_workflow_execution_completed")
        initiated = first(events, "start_child_workflow_execution_initiated")
        started = attrs(first(events, "child_workflow_execution_started"))
        completed = attrs(first(events, "child_workflow_execution_completed"))
        assert started.initiated_event_id == completed.initiated_event_id == initiated.event_id
        assert completed.started_event_id == first(events, "child_workflow_execution_started").event_id
        assert started.workflow_type.name == completed.workflow_type.name == "I4Echo"
        assert completed.result.data == b'"hi"'
        # The child's own history: parent info, inherited task list, its result.
        child = started.workflow_execution
        assert child.workflow_id == attrs(initiated).workflow_id
        close, child_events = await finish(env.client, child)
        assert kind(close) == "workflow_execution_completed"
        child_started = started_attrs(child_events)
        parent = child_started.parent_execution_info
        assert parent.workflow_execution.workflow_id == execution.workflow_id
        assert parent.workflow_execution.run_id == execution.run_id
        assert parent.initiated_id == initiated.event_id
        assert parent.domain_name == domain
        assert child_started.task_list.name == env.task_list
        assert child_started.workflow_type.name == "I4Echo"
        # The child starts with the memo and the header (context) of the parent's decision.
        assert child_started.memo.fields["from"].data == b'"parent"'
        assert child_started.header.fields["i4-tenant"].data == b"acme"


async def test_failing_child_is_reported_to_the_parent(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4ParentOfFailure", "child trouble")
        answer = await result(env.client, execution, str)
        assert answer.startswith("child failed"), answer
        events = await get_history(env.client, execution)
        failed = attrs(first(events, "child_workflow_execution_failed"))
        assert failed.failure.reason == "WorkflowBoom"
        assert failed.initiated_event_id == first(events, "start_child_workflow_execution_initiated").event_id
        assert "child_workflow_execution_completed" not in kinds(events)


async def test_child_started_then_signalled_by_the_parent(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4SignalChild", ["one", "two"])
        # The child got both signals, in the order the parent sent them.
        assert await result(env.client, execution, list[str]) == ["one", "two"]
        events = await get_history(env.client, execution)
        ks = kinds(events)
        child = attrs(first(events, "child_workflow_execution_started")).workflow_execution
        sends = [e for e in events if kind(e) == "signal_external_workflow_execution_initiated"]
        assert len(sends) == 2 and ks.index("child_workflow_execution_started") < sends[0].event_id - 1
        for send in sends:
            a = attrs(send)
            assert a.child_workflow_only and a.signal_name == "add"
            assert a.workflow_execution.workflow_id == child.workflow_id
        signaled = [attrs(e) for e in events if kind(e) == "external_workflow_execution_signaled"]
        assert sorted(s.initiated_event_id for s in signaled) == [s.event_id for s in sends]
        _, child_events = await finish(env.client, child)
        inputs = [attrs(e).input.data for e in child_events if kind(e) == "workflow_execution_signaled"]
        assert inputs == [b'"one"', b'"two"']


async def test_unrelated_workflow_signalled_via_signal_external(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        target = await env.start("I4Collector", 1)
        sender = await env.start("I4SignalExternal", target.workflow_id, "from a stranger")
        assert await result(env.client, sender, str) == "sent"
        assert await result(env.client, target, list[str]) == ["from a stranger"]
        events = await get_history(env.client, sender)
        initiated = first(events, "signal_external_workflow_execution_initiated")
        assert not attrs(initiated).child_workflow_only
        signaled = attrs(first(events, "external_workflow_execution_signaled"))
        assert signaled.initiated_event_id == initiated.event_id
        assert signaled.workflow_execution.workflow_id == target.workflow_id


async def test_signal_external_to_a_missing_workflow_fails_with_its_cause(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        sender = await env.start("I4SignalExternal", "no-such-workflow-id", "lost")
        answer = await result(env.client, sender, str)
        assert answer.startswith("not sent"), answer
        events = await get_history(env.client, sender)
        failed = attrs(first(events, "signal_external_workflow_execution_failed"))
        assert (
            failed.cause
            == T.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION
        )
        assert (
            failed.initiated_event_id
            == first(events, "signal_external_workflow_execution_initiated").event_id
        )


async def test_child_id_conflict_fails_the_start(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        busy = await env.start("I4Collector", 1)
        execution = await env.start("I4ChildConflict", busy.workflow_id)
        answer = await result(env.client, execution, str)
        assert answer.startswith("not started"), answer
        events = await get_history(env.client, execution)
        failed = attrs(first(events, "start_child_workflow_execution_failed"))
        assert failed.cause == T.CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_RUNNING
        assert failed.workflow_id == busy.workflow_id
        await env.client.signal_workflow(busy.workflow_id, "", "add", "still mine")
        assert await result(env.client, busy, list[str]) == ["still mine"]


async def test_parent_close_policies(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        prefix = env.task_list
        ids = {p: f"{prefix}-{p}" for p in ("terminate", "cancel", "abandon")}
        children = [
            [ids["terminate"], T.PARENT_CLOSE_POLICY_TERMINATE],
            [ids["cancel"], T.PARENT_CLOSE_POLICY_REQUEST_CANCEL],
            [ids["abandon"], T.PARENT_CLOSE_POLICY_ABANDON],
        ]
        parent = await env.start("I4CloseParent", children)
        assert await result(env.client, parent, str) == "parent done"
        events = await get_history(env.client, parent)
        assert count(events, "child_workflow_execution_started") == 3
        initiated = [attrs(e) for e in events if kind(e) == "start_child_workflow_execution_initiated"]
        assert [a.parent_close_policy for a in initiated] == [p for _, p in children]

        def child(policy: str) -> WorkflowExecution:
            return WorkflowExecution(workflow_id=ids[policy])

        # TERMINATE: the child is terminated once the parent closed.
        close = await wait_close(env.client, child("terminate"))
        assert kind(close) == "workflow_execution_terminated"
        # REQUEST_CANCEL: the child is asked to cancel (the client then cancels it).
        await wait_until(
            env.client,
            child("cancel"),
            lambda e: "workflow_execution_cancel_requested" in kinds(e),
            "WorkflowExecutionCancelRequested",
        )
        close = await wait_close(env.client, child("cancel"))
        assert kind(close) == "workflow_execution_canceled", kind(close)
        # ABANDON: the child runs on by itself and completes normally.
        abandoned = await get_history(env.client, child("abandon"))
        assert kinds(abandoned)[-1] not in ("workflow_execution_terminated", "workflow_execution_canceled")
        await env.client.signal_workflow(ids["abandon"], "", "add", "orphan")
        assert await result(env.client, child("abandon"), list[str]) == ["orphan"]


async def test_child_timed_out_is_reported_to_the_parent(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        child_id = f"{env.task_list}-slow-child"
        parent = await env.start("I4ChildObserver", child_id, 1)
        assert await result(env.client, parent, str) == "ChildWorkflowExecutionTimedOut"
        events = await get_history(env.client, parent)
        timed_out = attrs(first(events, "child_workflow_execution_timed_out"))
        assert timed_out.timeout_type == T.TIMEOUT_TYPE_START_TO_CLOSE
        assert (
            timed_out.initiated_event_id == first(events, "start_child_workflow_execution_initiated").event_id
        )
        close = await wait_close(env.client, WorkflowExecution(workflow_id=child_id))
        assert kind(close) == "workflow_execution_timed_out"


async def test_child_terminated_is_reported_to_the_parent(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        child_id = f"{env.task_list}-doomed-child"
        parent = await env.start("I4ChildObserver", child_id, 60)
        await wait_until(
            env.client,
            parent,
            lambda e: "child_workflow_execution_started" in kinds(e),
            "ChildWorkflowExecutionStarted",
        )
        await terminate(env.client, WorkflowExecution(workflow_id=child_id), reason="from outside")
        assert await result(env.client, parent, str) == "ChildWorkflowExecutionTerminated"
        events = await get_history(env.client, parent)
        terminated = attrs(first(events, "child_workflow_execution_terminated"))
        assert terminated.workflow_execution.workflow_id == child_id
        assert terminated.started_event_id == first(events, "child_workflow_execution_started").event_id


async def test_child_cancelled_by_the_parent(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        parent = await env.start("I4CancelChild")
        await wait_until(
            env.client,
            parent,
            lambda e: "child_workflow_execution_started" in kinds(e),
            "ChildWorkflowExecutionStarted",
        )
        await env.client.signal_workflow(parent.workflow_id, "", "cancel")
        assert await result(env.client, parent, str) == "ChildWorkflowExecutionCanceled"
        events = await get_history(env.client, parent)
        ks = kinds(events)
        child = attrs(first(events, "child_workflow_execution_started")).workflow_execution
        # RequestCancelExternalWorkflowExecution, child_workflow_only, then the child's
        # cancel request recorded, then the child closing Canceled.
        initiated = first(events, "request_cancel_external_workflow_execution_initiated")
        assert attrs(initiated).child_workflow_only
        assert attrs(initiated).workflow_execution.workflow_id == child.workflow_id
        requested = attrs(first(events, "external_workflow_execution_cancel_requested"))
        assert requested.initiated_event_id == initiated.event_id
        assert ks.index("external_workflow_execution_cancel_requested") < ks.index(
            "child_workflow_execution_canceled"
        )
        canceled = attrs(first(events, "child_workflow_execution_canceled"))
        assert canceled.workflow_execution.workflow_id == child.workflow_id
        close, child_events = await finish(env.client, child)
        assert kind(close) == "workflow_execution_canceled", kinds(child_events)
        cancel = attrs(first(child_events, "workflow_execution_cancel_requested"))
        assert cancel.external_execution_info.workflow_execution.workflow_id == parent.workflow_id
        assert cancel.external_execution_info.initiated_id == initiated.event_id


async def test_signal_external_to_a_closed_workflow_fails(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        target = await env.start("I4Echo", "done already")
        await result(env.client, target, str)
        sender = await env.start("I4SignalExternal", target.workflow_id, "too late")
        answer = await result(env.client, sender, str)
        assert answer.startswith("not sent"), answer
        failed = attrs(
            first(await get_history(env.client, sender), "signal_external_workflow_execution_failed")
        )
        assert failed.cause in (
            T.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_COMPLETED,
            T.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION,
        ), failed.cause
        _, events = await finish(env.client, target)
        assert "workflow_execution_signaled" not in kinds(events)


async def test_terminated_parent_applies_its_close_policy(server: Any, domain: str) -> None:
    """The close policy applies however the parent closes (here: terminated), and the
    client's default for children is TERMINATE."""
    async with running(server.address, domain) as env:
        parent = await env.start("I4CancelChild")
        events = await wait_until(
            env.client,
            parent,
            lambda e: "child_workflow_execution_started" in kinds(e),
            "ChildWorkflowExecutionStarted",
        )
        initiated = attrs(first(events, "start_child_workflow_execution_initiated"))
        assert initiated.parent_close_policy == T.PARENT_CLOSE_POLICY_TERMINATE
        child = attrs(first(events, "child_workflow_execution_started")).workflow_execution
        await terminate(env.client, parent)
        close = await wait_close(env.client, child)
        assert kind(close) == "workflow_execution_terminated"


# --- raw decisions: child_workflow_only against a workflow that is not a child ----------


async def test_child_workflow_only_refuses_a_workflow_that_is_not_a_child(server: Any, domain: str) -> None:
    """SignalExternal and RequestCancelExternal with child_workflow_only=true on an
    unrelated workflow fail with their cause; the target gets neither. (The client sets
    child_workflow_only only for its own children; a Go worker can send anything.)"""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        target = await env.start("I4HandDriven", task_list=f"{env.task_list}-target")
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        target_execution = WorkflowExecution(workflow_id=target.workflow_id)
        signal = decision_pb2.SignalExternalWorkflowExecutionDecisionAttributes(
            domain=domain, workflow_execution=target_execution, signal_name="add", child_workflow_only=True
        )
        cancel = decision_pb2.RequestCancelExternalWorkflowExecutionDecisionAttributes(
            domain=domain, workflow_execution=target_execution, child_workflow_only=True
        )
        await respond(
            env.client,
            task,
            [
                decision_pb2.Decision(signal_external_workflow_execution_decision_attributes=signal),
                decision_pb2.Decision(request_cancel_external_workflow_execution_decision_attributes=cancel),
            ],
        )
        events = await wait_until(
            env.client,
            execution,
            lambda e: (
                {
                    "signal_external_workflow_execution_failed",
                    "request_cancel_external_workflow_execution_failed",
                }
                <= set(kinds(e))
            ),
            "both failures",
        )
        assert "external_workflow_execution_signaled" not in kinds(events)
        assert "external_workflow_execution_cancel_requested" not in kinds(events)
        signal_failed = attrs(first(events, "signal_external_workflow_execution_failed"))
        assert (
            signal_failed.cause
            == T.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION
        )
        assert (
            signal_failed.initiated_event_id
            == first(events, "signal_external_workflow_execution_initiated").event_id
        )
        cancel_failed = attrs(first(events, "request_cancel_external_workflow_execution_failed"))
        assert (
            cancel_failed.cause
            == T.CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION
        )
        target_events = await get_history(env.client, target)
        assert not {"workflow_execution_signaled", "workflow_execution_cancel_requested"} & set(
            kinds(target_events)
        )
        for run in (execution, target):
            await terminate(env.client, run)


async def test_cancel_external_of_an_unrelated_workflow(server: Any, domain: str) -> None:
    """Without child_workflow_only, RequestCancelExternal reaches any workflow."""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        target = await env.start("I4HandDriven", task_list=f"{env.task_list}-target")
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        cancel = decision_pb2.RequestCancelExternalWorkflowExecutionDecisionAttributes(
            domain=domain, workflow_execution=WorkflowExecution(workflow_id=target.workflow_id)
        )
        await respond(
            env.client,
            task,
            [decision_pb2.Decision(request_cancel_external_workflow_execution_decision_attributes=cancel)],
        )
        events = await wait_until(
            env.client,
            execution,
            lambda e: "external_workflow_execution_cancel_requested" in kinds(e),
            "ExternalWorkflowExecutionCancelRequested",
        )
        initiated = first(events, "request_cancel_external_workflow_execution_initiated")
        requested = attrs(first(events, "external_workflow_execution_cancel_requested"))
        assert requested.initiated_event_id == initiated.event_id
        target_events = await get_history(env.client, target)
        cancel_requested = attrs(first(target_events, "workflow_execution_cancel_requested"))
        assert (
            cancel_requested.external_execution_info.workflow_execution.workflow_id == execution.workflow_id
        )
        assert cancel_requested.external_execution_info.initiated_id == initiated.event_id
        for run in (execution, target):
            await terminate(env.client, run)


async def test_signal_external_to_a_closed_run_does_not_reach_the_current_one(
    server: Any, domain: str
) -> None:
    """A signal addressed to one run (by run id) that is closed fails, even though another
    run of the same workflow id is open: it is not redirected to the current run."""
    async with running(server.address, domain) as env:
        old = await env.start("I4Collector", 1)
        await terminate(env.client, old)
        current = await env.start("I4Collector", 1, workflow_id=old.workflow_id)
        sender = await env.start("I4SignalRun", old.workflow_id, old.run_id, "to the old run")
        answer = await result(env.client, sender, str)
        assert answer.startswith("not sent"), answer
        failed = attrs(
            first(await get_history(env.client, sender), "signal_external_workflow_execution_failed")
        )
        assert failed.workflow_execution.run_id == old.run_id
        assert "workflow_execution_signaled" not in kinds(await get_history(env.client, current))
        await env.client.signal_workflow(current.workflow_id, current.run_id, "add", "direct")
        assert await result(env.client, current, list[str]) == ["direct"]


async def test_describe_shows_the_pending_child(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        parent = await env.start("I4CancelChild")
        events = await wait_until(
            env.client,
            parent,
            lambda e: "child_workflow_execution_started" in kinds(e),
            "ChildWorkflowExecutionStarted",
        )
        child = attrs(first(events, "child_workflow_execution_started")).workflow_execution
        described = await env.client.workflow_stub.DescribeWorkflowExecution(
            DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=parent), timeout=10
        )
        (pending,) = described.pending_children
        assert pending.workflow_execution.workflow_id == child.workflow_id
        assert pending.workflow_execution.run_id == child.run_id
        assert pending.workflow_type_name == "I4Collector"
        assert pending.initiated_id == first(events, "start_child_workflow_execution_initiated").event_id
        assert pending.parent_close_policy == T.PARENT_CLOSE_POLICY_TERMINATE
        assert pending.domain == domain
        await env.client.signal_workflow(child.workflow_id, "", "add", "done")
        await env.client.signal_workflow(parent.workflow_id, "", "cancel")
        await result(env.client, parent, str)
        described = await env.client.workflow_stub.DescribeWorkflowExecution(
            DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=parent), timeout=10
        )
        assert not described.pending_children
