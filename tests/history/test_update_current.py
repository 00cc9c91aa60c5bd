"""The engine asks the store to check and write the current-execution row only when a
transition changes the run's state or close status (engine._commit_update says why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadence.api.v1 import common_pb2, decision_pb2, service_worker_pb2, service_workflow_pb2, workflow_pb2

from cadence_fast.persistence.records import CloseStatus, UpdateWorkflow, WorkflowState
from tests.history.harness import DOMAIN, Env, complete_workflow, payload, schedule_activity


def _record_updates(env: Env) -> list[UpdateWorkflow]:
    """Every UpdateWorkflow op the engine commits, in order."""
    seen: list[UpdateWorkflow] = []
    for shard in env.history.shards:
        commit = shard.commit

        async def recording(op: Any, commit: Any = commit) -> None:
            if isinstance(op, UpdateWorkflow):
                seen.append(op)
            await commit(op)

        shard.commit = recording  # type: ignore[method-assign]
    return seen


async def test_only_state_changes_touch_the_current_row(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        updates = _record_updates(env)
        wf, run = await env.start()
        d = await env.poll_decision()
        assert d is not None
        await env.complete_decision(d.task_token, [schedule_activity("a1")])
        a = await env.poll_activity()
        assert a is not None
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=a.task_token, identity="w")
        )
        d = await env.poll_decision()
        assert d is not None
        await env.complete_decision(d.task_token, [complete_workflow()])
        # decision started, completed, activity started, completed, decision started, completed
        assert len(updates) == 6
        assert [op.update_current for op in updates] == [False] * 5 + [True]
        assert (updates[-1].state, updates[-1].close_status) == (
            WorkflowState.COMPLETED,
            CloseStatus.COMPLETED,
        )
        cur = await env.history._get_current(env.domain.id, wf)
        assert cur is not None and cur.run_id == run
        assert (cur.state, cur.close_status) == (WorkflowState.COMPLETED, CloseStatus.COMPLETED)
        # The id is reusable: a new run becomes current; the closed run stays readable.
        wf2, run2 = await env.start(
            wf, workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
        )
        assert wf2 == wf and run2 != run
        cur = await env.history._get_current(env.domain.id, wf)
        assert cur is not None and (cur.run_id, cur.state) == (run2, WorkflowState.RUNNING)
    finally:
        await env.close()


async def test_continue_as_new_moves_the_current_row(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        updates = _record_updates(env)
        wf, run = await env.start()
        d = await env.poll_decision()
        assert d is not None
        can = decision_pb2.Decision(
            continue_as_new_workflow_execution_decision_attributes=decision_pb2.ContinueAsNewWorkflowExecutionDecisionAttributes(
                workflow_type=common_pb2.WorkflowType(name="TestWorkflow"),
                input=payload('"next"'),
            )
        )
        await env.complete_decision(d.task_token, [can])
        assert updates[-1].update_current and updates[-1].new_run is not None
        cur = await env.history._get_current(env.domain.id, wf)
        assert cur is not None and cur.run_id == updates[-1].new_run.snapshot.run_id != run
        # The new run's transitions pass without touching the current row, which names it.
        d = await env.poll_decision()
        assert d is not None and d.workflow_execution.run_id == cur.run_id
        assert updates[-1].update_current is False and updates[-1].run_id == cur.run_id
        await env.history.signal_workflow(
            env.domain,
            service_workflow_pb2.SignalWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=wf),
                signal_name="s",
            ),
        )
        assert updates[-1].update_current is False
    finally:
        await env.close()
