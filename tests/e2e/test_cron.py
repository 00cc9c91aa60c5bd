"""Issue 4, cron schedules, with a real official-client worker: an `@every 2s` workflow
runs twice (each run waits its backoff before its first decision; the second run's
initiator is CRON_SCHEDULE and it carries the last result), a failing cron run still
continues on schedule, and a standard five-field schedule starts on its boundary."""

from __future__ import annotations

from typing import Any

from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from issue4_helpers import first, next_run, running, started_attrs, terminate, ts
from workflows import finish, get_history, kind, kinds

CRON = workflow_pb2.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
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


async def test_failing_cron_run_still_continues(server: Any, domain: str) -> None:
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
        await terminate(env.client, WorkflowExecution(workflow_id=execution.workflow_id))


async def test_five_field_schedule_starts_on_its_boundary(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("I4Echo", "minutely", cron_schedule="* * * * *")
        events = await get_history(env.client, execution)
        started = started_attrs(events)
        assert started.cron_schedule == "* * * * *"
        backoff = ts(started.first_decision_task_backoff)
        assert 0 < backoff <= 60
        # Started + backoff lands on the next whole minute.
        first_run_at = ts(events[0].event_time) + backoff
        assert abs(first_run_at - round(first_run_at / 60) * 60) < 1.0, first_run_at
        if backoff > 3:  # (a read that close to the boundary may already see the decision)
            assert "decision_task_scheduled" not in kinds(events)
        await terminate(env.client, execution)
