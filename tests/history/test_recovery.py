"""Restart and cache behaviour: pending work resumes from the outbox; a reload equals the cached state."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from cadence.api.v1 import common_pb2, service_worker_pb2, workflow_pb2

from cadence_fast._core import mutable_state as core
from tests.history.harness import (
    Env,
    assert_dense,
    complete_workflow,
    kinds,
    payload,
    schedule_activity,
    start_timer,
)


async def test_pending_work_resumes_after_restart(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    wf_decision, _ = await env.start("pending-decision", task_timeout=1)
    wf_activity, _ = await env.start("pending-activity")
    wf_timeout, _ = await env.start("pending-timeout")
    wf_timer, _ = await env.start("pending-timer")
    for _ in range(4):
        task = await env.poll_decision()
        assert task is not None
        wf = task.workflow_execution.workflow_id
        if wf == wf_decision:
            wf_decision_token = task.task_token  # left started: its timeout must fire after the restart
        elif wf == wf_activity:
            await env.complete_decision(task.task_token, [schedule_activity("a", s2s=30, task_list="acts")])
        elif wf == wf_timeout:
            await env.complete_decision(task.task_token, [schedule_activity("t", stc=1, task_list="slow")])
        else:
            await env.complete_decision(task.task_token, [start_timer("t", 1)])
    started = await env.poll_activity("slow")
    assert started is not None
    env = await env.reopen()
    try:
        # the started decision times out and is retried
        task = await env.poll_decision(timeout=15)
        seen = {}
        while task is not None:
            seen[task.workflow_execution.workflow_id] = task
            if len(seen) == 3:
                break
            task = await env.poll_decision(timeout=15)
        assert set(seen) == {wf_decision, wf_timeout, wf_timer}
        assert kinds(seen[wf_decision].history.events)[3] == "decision_task_timed_out"
        assert "activity_task_timed_out" in kinds(seen[wf_timeout].history.events)
        assert "timer_fired" in kinds(seen[wf_timer].history.events)
        del wf_decision_token
        act = await env.poll_activity("acts", timeout=5)
        assert act is not None and act.activity_id == "a"
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(
                task_token=act.task_token, result=payload("1")
            )
        )
        task = await env.poll_decision(timeout=5)
        assert task is not None and task.workflow_execution.workflow_id == wf_activity
        for t in [*seen.values(), task]:
            await env.complete_decision(t.task_token, [complete_workflow()])
        for wf in (wf_decision, wf_activity, wf_timeout, wf_timer):
            close = await env.close_event(wf)
            assert close is not None and close.HasField("workflow_execution_completed_event_attributes")
            events = await env.history_events(wf)
            assert_dense(events)
    finally:
        await env.close()


def _state(ms: object) -> tuple[object, object]:
    info = dict(
        zip(
            core.MutableState.INFO_FIELDS,
            [getattr(ms, f) for f in core.MutableState.INFO_FIELDS],
            strict=True,
        )
    )
    maps = ms.encode_maps()  # type: ignore[attr-defined]
    return info, maps


async def test_cache_eviction_reload_equivalence(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        env.history.cache.capacity = 2  # most transitions start from a store load
        wfs = [(await env.start())[0] for _ in range(5)]
        for _ in range(5):
            task = await env.poll_decision()
            assert task is not None
            await env.complete_decision(
                task.task_token, [schedule_activity(str(i), task_list="acts", hb=20) for i in range(3)]
            )
        acts = []
        for _ in range(15):
            a = await env.poll_activity("acts")
            assert a is not None
            acts.append(a)
        await asyncio.gather(*[
            env.history.record_activity_task_heartbeat(
                service_worker_pb2.RecordActivityTaskHeartbeatRequest(task_token=a.task_token, details=payload("d"))
            )
            for a in acts
        ])  # fmt: skip
        await env.signal(wfs[0], "s", '"x"')
        for wf in wfs:
            key = await env.history.resolve_run(env.domain.id, common_pb2.WorkflowExecution(workflow_id=wf))
            cached = await env.history.load(key)
            before = _state(cached)
            env.history.cache.evict(key)
            reloaded = await env.history.load(key)
            assert reloaded is not cached
            after = _state(reloaded)
            assert {k: v for k, v in after[0].items() if before[0][k] != v} == {}
            assert after[1] == before[1]
            assert len(reloaded.activities) == 3
            assert all(a.details == b"d" for a in reloaded.activities.values())
        # everything still completes after all that churn
        for a in acts:
            await env.history.respond_activity_task_completed(
                service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=a.task_token)
            )
        done = 0
        while done < 5:
            task = await env.poll_decision(timeout=5)
            assert task is not None
            if (
                sum(1 for e in task.history.events if e.HasField("activity_task_completed_event_attributes"))
                < 3
            ):
                await env.complete_decision(task.task_token, [])
                continue
            await env.complete_decision(task.task_token, [complete_workflow()])
            done += 1
        for wf in wfs:
            events = await env.history_events(wf)
            assert_dense(events)
            assert events[-1].HasField("workflow_execution_completed_event_attributes")
            assert all(
                e.decision_task_failed_event_attributes.cause != workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
                for e in events if e.HasField("decision_task_failed_event_attributes")
            )  # fmt: skip
    finally:
        await env.close()


async def test_transfer_to_stopped_matching_is_quiet_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # shutdown order stops matching first: a transfer task then meets UnavailableError; it is
    # expected (debug, not warning/error) and the task stays in the outbox for the next start
    env = await Env(tmp_path / "h.db").open()
    caplog.set_level(logging.DEBUG, logger="cadence_fast.history")
    await env.matching.stop()
    wf, _ = await env.start("after-matching-stop")
    for _ in range(1000):
        if any("transfer task" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    tried = [r for r in caplog.records if "transfer task" in r.getMessage()]
    assert tried and all(r.levelno < logging.WARNING for r in tried)
    env = await env.reopen()
    try:
        task = await env.poll_decision(timeout=10)
        assert task is not None and task.workflow_execution.workflow_id == wf
    finally:
        await env.close()
