"""A caller cancelled while its commit is queued: the write still lands, and the engine's
cache must not keep answering from the state it had before (outcome unknown -> reload)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from cadence.api.v1 import common_pb2, service_workflow_pb2

from cadence_fast.history.shard import Shard
from tests.history.harness import DOMAIN, Env


def _busy(shard: Shard) -> bool:
    return bool(shard._pending or shard._inflight)


async def _until(cond: Callable[[], bool]) -> None:
    """Step the loop until cond holds; one step at a time so no committer state is skipped
    (bounded: a hang fails the test instead)."""
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def _cancel_once_queued(
    env: Env, workflow_id: str, coro: Coroutine[Any, Any, Any], op: int = 1
) -> None:
    """Run coro until its op-th op is queued in the shard committer, cancel it, wait for the commit."""
    shard = env.history.shard_for(workflow_id)
    task = asyncio.ensure_future(coro)
    for n in range(op):
        if n:  # let the earlier op finish first
            await _until(lambda: not _busy(shard))
        await _until(lambda: _busy(shard))
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await _until(lambda: not _busy(shard))


async def test_cancelled_start_does_not_leave_a_stale_current_run(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, first = await env.start("reused-id")
        await env.history.terminate_workflow(
            env.domain,
            service_workflow_pb2.TerminateWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=wf, run_id=first),
                reason="done",
            ),
        )
        # the cache's current run is `first` (closed); a new run of the id is started and
        # its caller goes away while the create is queued: the create still commits (op 1 is
        # the brand-new create the store refuses, op 2 the create that reuses the id)
        await _cancel_once_queued(
            env, wf, env.history.start_workflow(env.domain, env.start_request(wf)), op=2
        )
        # an empty run id must resolve to the new open run, not the closed one
        await env.signal(wf, "s", '"x"')
        events = await env.history_events(wf)
        assert events[0].HasField("workflow_execution_started_event_attributes")
        assert any(e.HasField("workflow_execution_signaled_event_attributes") for e in events)
        assert (await env.history.resolve_run(env.domain.id, common_pb2.WorkflowExecution(workflow_id=wf)))[
            2
        ] != first
    finally:
        await env.close()


async def test_cancelled_signal_leaves_no_stale_cached_state(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, run = await env.start("cancelled-signal")
        await _cancel_once_queued(env, wf, env.signal(wf, "first", '"1"', run_id=run))
        # the cancelled signal was written; the next one must follow it, not collide with it
        await env.signal(wf, "second", '"2"', run_id=run)
        names = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in await env.history_events(wf, run)
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert names == ["first", "second"]
    finally:
        await env.close()
