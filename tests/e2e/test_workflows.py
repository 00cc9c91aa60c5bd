"""Real workflows of the official Python client on a real server: results, failures,
activities (sequential, parallel, fan-out), heartbeats, heartbeat timeouts, activity
cancellation. Every history read is checked against the layout rules (workflows.check_history).
"""

from __future__ import annotations

from typing import Any

import pytest
from cadence.api.v1 import workflow_pb2
from workflows import finish, get_history, kind, kinds, result, running, wait_for_event

# Issue 5: these run on every store (SQLite, PostgreSQL, MariaDB).
pytestmark = pytest.mark.all_stores

STARTED = "activity_task_started"
COMPLETED = "activity_task_completed"


def count(events: list[Any], k: str) -> int:
    return sum(1 for e in events if kind(e) == k)


async def test_echo_workflow(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("EchoWorkflow", "hello, cadence")
        assert execution.run_id
        assert await result(env.client, execution, str) == "hello, cadence"
        events = await get_history(env.client, execution)
        assert kinds(events) == [
            "workflow_execution_started",
            "decision_task_scheduled",
            "decision_task_started",
            "decision_task_completed",
            "workflow_execution_completed",
        ]
        started = events[0].workflow_execution_started_event_attributes
        assert started.workflow_type.name == "EchoWorkflow"
        assert started.task_list.name == env.task_list
        assert env.client.data_converter.from_data(started.input, [str]) == ["hello, cadence"]


async def test_failing_workflow_records_reason_and_details(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("FailingWorkflow", "it broke on purpose")
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_failed"
        failure = close.workflow_execution_failed_event_attributes.failure
        assert failure.reason == "WorkflowBoom"
        assert "it broke on purpose" in failure.details.decode()


async def test_one_activity(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("OneActivityWorkflow", 41)
        assert await result(env.client, execution, int) == 42
        events = await get_history(env.client, execution)
        scheduled = next(e for e in events if kind(e) == "activity_task_scheduled")
        attrs = scheduled.activity_task_scheduled_event_attributes
        assert attrs.activity_type.name == "add_one"
        assert attrs.task_list.name == env.task_list
        assert attrs.start_to_close_timeout.seconds == 10
        assert (count(events, STARTED), count(events, COMPLETED)) == (1, 1)


async def test_three_sequential_activities(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("SequentialActivitiesWorkflow", 1)
        assert await result(env.client, execution, int) == 4
        events = await get_history(env.client, execution)
        assert (count(events, "activity_task_scheduled"), count(events, COMPLETED)) == (3, 3)
        # Sequential: each activity is scheduled by its own decision.
        assert count(events, "decision_task_completed") == 4


async def test_two_parallel_activities(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("ParallelActivitiesWorkflow", 1)
        assert await result(env.client, execution, int) == (1 + 1) + (11 + 1)
        events = await get_history(env.client, execution)
        # Parallel: both are outputs of the first decision.
        first_completed = kinds(events).index("decision_task_completed")
        assert kinds(events)[first_completed + 1 : first_completed + 3] == ["activity_task_scheduled"] * 2


async def test_one_then_thirteen_parallel_activities(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("FanOutWorkflow", 13)
        # first = 1; then add_one(1 + i) for i in 0..12 -> sum(2..14)
        assert await result(env.client, execution, int) == sum(range(2, 15))
        events = await get_history(env.client, execution)
        assert count(events, "activity_task_scheduled") == 14
        assert count(events, COMPLETED) == 14
        assert count(events, "decision_task_timed_out") == 0, kinds(events)


async def test_failing_activity_fails_the_workflow(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("FailingActivityWorkflow", "activity went wrong")
        close, events = await finish(env.client, execution)
        failed = next(
            e for e in events if kind(e) == "activity_task_failed"
        ).activity_task_failed_event_attributes
        assert failed.failure.reason == "ActivityBoom"
        assert "activity went wrong" in failed.failure.details.decode()
        assert kind(close) == "workflow_execution_failed"
        assert close.workflow_execution_failed_event_attributes.failure.reason == "ActivityFailure"


async def test_heartbeats_keep_a_slow_activity_alive(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        # 8 steps of 0.4 s = 3.2 s of work under a 1 s heartbeat timeout.
        execution = await env.start("HeartbeatWorkflow", 8, 0.4, 1)
        assert await result(env.client, execution, int) == 8
        events = await get_history(env.client, execution)
        assert count(events, "activity_task_timed_out") == 0


async def test_missing_heartbeat_times_the_activity_out(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("MissingHeartbeatWorkflow", 4.0)
        close, events = await finish(env.client, execution)
        timed_out = next(e for e in events if kind(e) == "activity_task_timed_out")
        assert (
            timed_out.activity_task_timed_out_event_attributes.timeout_type
            == workflow_pb2.TIMEOUT_TYPE_HEARTBEAT
        )
        assert kind(close) == "workflow_execution_failed"
        failure = close.workflow_execution_failed_event_attributes.failure
        assert failure.reason == "ActivityFailure"
        assert "TIMEOUT_TYPE_HEARTBEAT" in failure.details.decode()


async def test_activity_cancelled_through_its_heartbeat(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("CancelActivityWorkflow", 20.0)
        await wait_for_event(env.client, execution, STARTED)
        await env.client.signal_workflow(execution.workflow_id, execution.run_id, "cancel")
        assert await result(env.client, execution, str) == "activity cancelled"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        assert ks.index("activity_task_cancel_requested") < ks.index("activity_task_canceled")
        canceled = events[ks.index("activity_task_canceled")].activity_task_canceled_event_attributes
        assert canceled.started_event_id == events[ks.index(STARTED)].event_id
        assert (
            canceled.latest_cancel_requested_event_id
            == events[ks.index("activity_task_cancel_requested")].event_id
        )
