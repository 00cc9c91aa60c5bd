"""Issue 4, timers, with a real official-client worker: a timer fires no earlier than its
duration (event times and wall clock), several fire in deadline order, and a cancelled
timer writes TimerCanceled. With raw decisions: cancelling a timer whose firing is still
buffered drops the firing; cancelling an unknown timer writes CancelTimerFailed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cadence.api.v1 import decision_pb2, workflow_pb2
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.tasklist_pb2 import TaskList
from issue4_helpers import (
    attrs,
    complete_decision,
    count,
    first,
    poll_until_task,
    respond,
    running,
    terminate,
    timer_decision,
    ts,
    wait_until,
)
from workflows import Env, finish, get_history, kind, kinds, result

TIMER_SECONDS = 1.0


async def test_timer_fires_after_its_duration(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        wall_start = time.time()
        execution = await env.start("I4Timer", TIMER_SECONDS)
        assert await result(env.client, execution, str) == f"slept {TIMER_SECONDS}"
        wall_done = time.time()
        events = await get_history(env.client, execution)
        started = first(events, "timer_started")
        fired = first(events, "timer_fired")
        assert ts(attrs(started).start_to_fire_timeout) == TIMER_SECONDS
        assert attrs(fired).timer_id == attrs(started).timer_id
        assert attrs(fired).started_event_id == started.event_id
        # Never early, by the server's own clock ...
        delay = ts(fired.event_time) - ts(started.event_time)
        assert delay >= TIMER_SECONDS, delay
        # ... nor by the test's: the firing happened in real time, at least the duration
        # after the start request was sent and before the close was read.
        assert wall_start + TIMER_SECONDS <= ts(fired.event_time) <= wall_done + 0.01
        assert wall_done - wall_start >= TIMER_SECONDS
        # The firing scheduled the decision that completed the run.
        ks = kinds(events)
        assert ks[ks.index("timer_fired") + 1] == "decision_task_scheduled", ks
        assert count(events, "timer_started") == count(events, "timer_fired") == 1


async def test_cancelled_timer(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4CancelTimer", TIMER_SECONDS)
        await wait_until(env.client, execution, lambda e: "timer_started" in kinds(e), "TimerStarted")
        await env.client.signal_workflow(execution.workflow_id, "", "cancel")
        assert await result(env.client, execution, str) == "long timer cancelled, short timer fired"
        events = await get_history(env.client, execution)
        long_timer, short_timer = [e for e in events if kind(e) == "timer_started"]
        canceled = first(events, "timer_canceled")
        assert attrs(canceled).timer_id == attrs(long_timer).timer_id
        assert attrs(canceled).started_event_id == long_timer.event_id
        # The cancelled timer never fires; the later one does, and only it.
        fired = [e for e in events if kind(e) == "timer_fired"]
        assert [attrs(e).timer_id for e in fired] == [attrs(short_timer).timer_id]
        assert ts(fired[0].event_time) >= ts(short_timer.event_time) + TIMER_SECONDS


async def test_several_timers_fire_in_the_order_of_their_deadlines(server: Any, domain: str) -> None:
    durations = [1.2, 0.4, 0.8]
    async with running(server.address, domain) as env:
        execution = await env.start("I4Timers", durations)
        assert await result(env.client, execution, list[float]) == sorted(durations)
        events = await get_history(env.client, execution)
        started = {attrs(e).timer_id: e for e in events if kind(e) == "timer_started"}
        fired = [e for e in events if kind(e) == "timer_fired"]
        assert len(started) == len(fired) == 3
        firing_order = [ts(attrs(started[attrs(e).timer_id]).start_to_fire_timeout) for e in fired]
        assert firing_order == sorted(durations)
        for e in fired:
            s = started[attrs(e).timer_id]
            assert ts(e.event_time) >= ts(s.event_time) + ts(attrs(s).start_to_fire_timeout)


# --- raw decisions: what the official client cannot make happen on purpose ------------


def cancel_timer_decision(timer_id: str) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        cancel_timer_decision_attributes=decision_pb2.CancelTimerDecisionAttributes(timer_id=timer_id)
    )


async def buffered_firing(env: Env) -> tuple[WorkflowExecution, W.PollForDecisionTaskResponse]:
    """A run whose timer t1 fired while the returned decision task is started, so that
    its TimerFired is buffered until the decision completes."""
    normal = TaskList(name=env.task_list)
    execution = await env.start("I4HandDriven")
    task = await poll_until_task(env.client, normal)
    await respond(env.client, task, [timer_decision("t1", 1)])
    await env.client.signal_workflow(execution.workflow_id, "", "nudge")
    task = await poll_until_task(env.client, normal)  # a decision in flight ...
    await asyncio.sleep(2)  # ... while the timer fires
    assert "timer_fired" not in kinds(await get_history(env.client, execution))
    return execution, task


def assert_cancelled_not_fired(events: list[Any]) -> None:
    assert "timer_fired" not in kinds(events)
    canceled = attrs(first(events, "timer_canceled"))
    assert canceled.timer_id == "t1"
    assert canceled.started_event_id == first(events, "timer_started").event_id


async def test_cancelling_a_timer_whose_firing_is_buffered(server: Any, domain: str) -> None:
    """The decision that cancels the timer drops its buffered firing: TimerCanceled, no
    TimerFired, and no new decision for an event that no longer exists."""
    async with running(server.address, domain, worker=False) as env:
        execution, task = await buffered_firing(env)
        await respond(env.client, task, [cancel_timer_decision("t1")])
        events = await get_history(env.client, execution)
        assert kinds(events)[-2:] == ["decision_task_completed", "timer_canceled"], kinds(events)
        assert_cancelled_not_fired(events)
        await terminate(env.client, execution)


async def test_cancel_of_a_buffered_firing_then_complete_in_one_decision(server: Any, domain: str) -> None:
    """CancelTimer then CompleteWorkflowExecution (the order the Python client emits them,
    client-contract 4c): once the cancel dropped the buffered firing nothing is unhandled,
    so the run completes (Go re-evaluates hasUnhandledEventsBeforeDecisions after a
    successful CancelTimer)."""
    async with running(server.address, domain, worker=False) as env:
        execution, task = await buffered_firing(env)
        await respond(env.client, task, [cancel_timer_decision("t1"), complete_decision()])
        events = await get_history(env.client, execution)
        try:
            assert kind(events[-1]) == "workflow_execution_completed", kinds(events)
            assert_cancelled_not_fired(events)
        finally:
            if kind(events[-1]) != "workflow_execution_completed":
                await terminate(env.client, execution)


async def test_cancelling_an_unknown_timer_fails(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        await respond(env.client, task, [cancel_timer_decision("nope"), complete_decision()])
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed", kinds(events)
        failed = first(events, "cancel_timer_failed")
        assert attrs(failed).timer_id == "nope"
        assert attrs(failed).cause
        assert (
            attrs(failed).decision_task_completed_event_id
            == first(events, "decision_task_completed").event_id
        )


async def test_starting_a_timer_id_twice_fails_the_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        await respond(env.client, task, [timer_decision("twice", 60), timer_decision("twice", 60)])
        events = await wait_until(
            env.client, execution, lambda e: "decision_task_failed" in kinds(e), "failure"
        )
        failed = attrs(first(events, "decision_task_failed"))
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID
        # The failed decision wrote nothing: no timer was started.
        assert "timer_started" not in kinds(events)
        await terminate(env.client, execution)


async def test_timer_without_a_duration_fails_the_decision(server: Any, domain: str) -> None:
    """StartTimer needs a positive start_to_fire_timeout (the client never sends one <= 0;
    a Go worker could): the decision fails with BAD_START_TIMER_ATTRIBUTES naming it."""
    async with running(server.address, domain, worker=False) as env:
        normal = TaskList(name=env.task_list)
        execution = await env.start("I4HandDriven")
        task = await poll_until_task(env.client, normal)
        no_duration = decision_pb2.Decision(
            start_timer_decision_attributes=decision_pb2.StartTimerDecisionAttributes(timer_id="t0")
        )
        await respond(env.client, task, [no_duration])
        events = await wait_until(
            env.client, execution, lambda e: "decision_task_failed" in kinds(e), "failure"
        )
        failed = attrs(first(events, "decision_task_failed"))
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES
        assert "StartToFireTimeout" in failed.failure.reason + failed.failure.details.decode(), failed
        assert "timer_started" not in kinds(events)
        await terminate(env.client, execution)
