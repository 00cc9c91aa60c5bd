"""Issue 4, cron schedules, with a real official-client worker: an `@every 2s` workflow
runs twice (each run waits its backoff before its first decision; the second run's
initiator is CRON_SCHEDULE and it carries the last result), a failing cron run still
continues on schedule (terminating one ends the chain), a failing run with a retry policy
is retried before the next tick, five-field schedules and descriptors start on their
boundaries, and the overlap policies SKIPPED and BUFFER_ONE decide when a late run's
successor starts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from issue4_helpers import first, next_run, running, started_attrs, terminate, ts, wait_until
from workflows import finish, get_history, kind, kinds

CRON = workflow_pb2.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
RETRY = workflow_pb2.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY
EVERY = "@every 2s"


def assert_waits_its_backoff(events: list[Any]) -> float:
    """The run's first decision is not scheduled before Started + first_decision_task_backoff."""
    backoff = ts(started_attrs(events).first_decision_task_backoff)
    scheduled = first(events, "decision_task_scheduled")
    assert ts(scheduled.event_time) >= ts(events[0].event_time) + backoff - 0.001, (backoff, kinds(events))
    return backoff


async def test_cron_runs_twice_and_carries_the_last_result(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4Echo", "tick", cron_schedule=EVERY)
        close, events = await finish(env.client, execution, within=20)
        started = started_attrs(events)
        assert started.cron_schedule == EVERY
        assert assert_waits_its_backoff(events) > 0  # even the first run waits for its slot
        assert "workflow_execution_completed" not in kinds(events)
        assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
        continued = close.workflow_execution_continued_as_new_event_attributes
        assert continued.initiator == CRON
        assert continued.last_completion_result.data == b'"tick"'
        assert ts(continued.backoff_start_interval) > 0

        second = next_run(close, execution)
        close, events = await finish(env.client, second, within=20)
        started = started_attrs(events)
        assert started.initiator == CRON
        assert started.cron_schedule == EVERY
        assert started.continued_execution_run_id == execution.run_id
        assert started.last_completion_result.data == b'"tick"'
        assert assert_waits_its_backoff(events) > 0
        assert kind(close) == "workflow_execution_continued_as_new"
        # The schedule goes on until stopped.
        await terminate(env.client, WorkflowExecution(workflow_id=execution.workflow_id))


async def test_failing_cron_run_still_continues_and_termination_ends_the_chain(
    server: Any, domain: str
) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4Fail", "cron trouble", cron_schedule=EVERY)
        close, events = await finish(env.client, execution, within=20)
        assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
        continued = close.workflow_execution_continued_as_new_event_attributes
        assert continued.initiator == CRON
        assert continued.failure.reason == "WorkflowBoom"
        second = next_run(close, execution)
        started = started_attrs(await get_history(env.client, second))
        assert started.initiator == CRON
        assert started.continued_failure.reason == "WorkflowBoom"
        # Nothing completed yet, so there is no last result to carry.
        assert not started.last_completion_result.data
        # Terminating the run waiting for its tick ends the chain: no run follows it.
        await terminate(env.client, WorkflowExecution(workflow_id=execution.workflow_id))
        await asyncio.sleep(2.5)  # past that tick
        current = await get_history(env.client, WorkflowExecution(workflow_id=execution.workflow_id))
        assert started_attrs(current) == started
        assert kind(current[-1]) == "workflow_execution_terminated", kinds(current)


@pytest.mark.parametrize(
    ("schedule", "period"),
    [("* * * * *", 60), ("*/5 * * * *", 300), ("@hourly", 3600), ("@every 5m", None)],
)
async def test_schedule_starts_on_its_boundary(
    server: Any, domain: str, schedule: str, period: int | None
) -> None:
    """Standard five-field schedules and descriptors: the first run waits for the first
    tick (a whole minute / five minutes / hour; `@every` counts from the start)."""
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("I4Echo", "scheduled", cron_schedule=schedule)
        events = await get_history(env.client, execution)
        started = started_attrs(events)
        assert started.cron_schedule == schedule
        backoff = ts(started.first_decision_task_backoff)
        if period is None:
            assert backoff == 300
        else:
            assert 0 < backoff <= period
            first_run_at = ts(events[0].event_time) + backoff
            assert abs(first_run_at - round(first_run_at / period) * period) < 1.0, first_run_at
        if backoff > 3:  # (a read that close to the tick may already see the decision)
            assert "decision_task_scheduled" not in kinds(events)
        await terminate(env.client, execution)


async def test_cron_overlap_policies(server: Any, domain: str) -> None:
    """Runs of 3 s on an every-2-s schedule: each run misses a tick. SKIPPED (the default)
    waits for the next tick of the run's grid (its execution time + k * 2 s); BUFFER_ONE
    starts the missed run as soon as the last one closes. The policy stays with the chain."""
    async with running(server.address, domain) as env:

        async def second_run(policy: int) -> tuple[float, float]:
            """The second run's backoff, and where it starts on the first run's grid."""
            execution = await env.start("I4Timer", 3.0, cron_schedule=EVERY, cron_overlap_policy=policy)
            close, events = await finish(env.client, execution, within=20)
            grid_origin = ts(events[0].event_time) + ts(started_attrs(events).first_decision_task_backoff)
            second = next_run(close, execution)
            events = await wait_until(
                env.client,
                second,
                lambda e: "decision_task_scheduled" in kinds(e),
                "the second run's decision",
            )
            started = started_attrs(events)
            assert started.initiator == CRON and started.cron_overlap_policy == policy
            await terminate(env.client, WorkflowExecution(workflow_id=execution.workflow_id))
            backoff = ts(started.first_decision_task_backoff)
            return backoff, (ts(events[0].event_time) + backoff - grid_origin) % 2

        (skipped, on_grid), (buffered, _) = await asyncio.gather(
            second_run(workflow_pb2.CRON_OVERLAP_POLICY_SKIPPED),
            second_run(workflow_pb2.CRON_OVERLAP_POLICY_BUFFER_ONE),
        )
        assert skipped > 0
        # On a tick of the grid: backoffs are whole seconds, rounded up (up to 1 s after the
        # tick), counted from the predecessor's close; the successor's Started event is written
        # a few ms to tens of ms after that close under load, hence the 0.1 s of slack.
        assert on_grid < 1.1 or on_grid > 1.99, on_grid
        assert buffered == 0


async def test_cron_with_a_retry_policy_retries_before_the_next_tick(server: Any, domain: str) -> None:
    """A failing cron run with a retry policy is first retried (RETRY_POLICY, attempt 1);
    when its attempts are spent, the chain goes on to the next tick (CRON_SCHEDULE) with
    attempt 0 again."""
    async with running(server.address, domain) as env:
        policy = {"initial_interval": timedelta(seconds=1), "maximum_attempts": 2}
        execution = await env.start("I4Fail", "flaky cron", cron_schedule=EVERY, retry_policy=policy)
        close, events = await finish(env.client, execution, within=20)
        assert close.workflow_execution_continued_as_new_event_attributes.initiator == RETRY
        retried = next_run(close, execution)
        close, events = await finish(env.client, retried, within=20)
        assert started_attrs(events).attempt == 1
        assert started_attrs(events).cron_schedule == EVERY
        assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
        continued = close.workflow_execution_continued_as_new_event_attributes
        assert continued.initiator == CRON and continued.failure.reason == "WorkflowBoom"
        following = next_run(close, retried)
        started = started_attrs(await get_history(env.client, following))
        assert started.initiator == CRON and started.attempt == 0
        await terminate(env.client, WorkflowExecution(workflow_id=execution.workflow_id))
