"""The engine's rules as a worker sees them: activity timeouts, cancelling an activity
that never started, first-decision backoff, memo; and, driven by hand over the raw
WorkerAPI stub, the decision-task rules of client-contract §4a (buffering while a
decision is started, a completion decision while events are buffered, decision timeouts
and failures, closing a run with a started decision) and the poll replies' fields.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cadence.api.v1 import decision_pb2, history_pb2, workflow_pb2
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1.common_pb2 import ActivityType, Payload, WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import (
    DescribeWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.worker import Worker
from workflows import Env, finish, get_history, kind, kinds, registry, result, running, wait_for_event

T = workflow_pb2


def ts(t: Any) -> float:
    return t.seconds + t.nanos / 1e9


def activity_failure(close: history_pb2.HistoryEvent) -> str:
    assert kind(close) == "workflow_execution_failed", kind(close)
    failure = close.workflow_execution_failed_event_attributes.failure
    assert failure.reason == "ActivityFailure"
    return failure.details.decode()


def timed_out(events: list[Any]) -> Any:
    return next(
        e for e in events if kind(e) == "activity_task_timed_out"
    ).activity_task_timed_out_event_attributes


# --- activity timeouts and cancellation, with the real client ---------------------------


async def test_schedule_to_start_timeout(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start(
            "ActivityOptionsWorkflow",
            "add_one",
            [1],
            {"schedule_to_start_timeout": 1},
            f"{env.task_list}-nobody",
        )
        close, events = await finish(env.client, execution)
        assert "TIMEOUT_TYPE_SCHEDULE_TO_START" in activity_failure(close)
        assert timed_out(events).timeout_type == T.TIMEOUT_TYPE_SCHEDULE_TO_START
        assert "activity_task_started" not in kinds(events)


async def test_start_to_close_timeout(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start(
            "ActivityOptionsWorkflow",
            "silent_activity",
            [3.0],
            {"start_to_close_timeout": 1, "heartbeat_timeout": 30},
            "",
        )
        close, events = await finish(env.client, execution)
        assert "TIMEOUT_TYPE_START_TO_CLOSE" in activity_failure(close)
        attrs = timed_out(events)
        assert attrs.timeout_type == T.TIMEOUT_TYPE_START_TO_CLOSE
        assert attrs.started_event_id == next(
            e.event_id for e in events if kind(e) == "activity_task_started"
        )


async def test_cancel_of_an_activity_that_never_started(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        async with Worker(env.client, env.task_list, registry, disable_activity_worker=True):
            execution = await env.start("CancelActivityWorkflow", 20.0)
            await wait_for_event(env.client, execution, "activity_task_scheduled")
            await env.client.signal_workflow(execution.workflow_id, "", "cancel")
            assert await result(env.client, execution, str) == "activity cancelled"
        events = await get_history(env.client, execution)
        ks = kinds(events)
        # Not started: ActivityTaskCanceled is written at once, right after the request.
        i = ks.index("activity_task_cancel_requested")
        assert ks[i + 1] == "activity_task_canceled", ks
        canceled = events[i + 1].activity_task_canceled_event_attributes
        assert canceled.started_event_id == 0
        assert canceled.latest_cancel_requested_event_id == events[i].event_id
        assert "activity_task_started" not in ks


async def test_delay_start_backs_off_the_first_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("EchoWorkflow", "later", delay_start=timedelta(seconds=2))
        assert await result(env.client, execution, str) == "later"
        events = await get_history(env.client, execution)
        started = events[0].workflow_execution_started_event_attributes
        assert started.first_decision_task_backoff.seconds == 2
        scheduled = next(e for e in events if kind(e) == "decision_task_scheduled")
        assert ts(scheduled.event_time) >= ts(events[0].event_time) + 2


async def test_memo_is_stored_and_described(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("EchoWorkflow", "m", memo={"owner": "team-a", "n": 3})
        await result(env.client, execution, str)
        events = await get_history(env.client, execution)
        memo = events[0].workflow_execution_started_event_attributes.memo
        assert memo.fields["owner"].data == b'"team-a"'
        assert memo.fields["n"].data == b"3"
        described = await env.client.workflow_stub.DescribeWorkflowExecution(
            DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=execution), timeout=30
        )
        assert described.workflow_execution_info.memo.fields["owner"].data == b'"team-a"'


# --- decision tasks driven by hand ----------------------------------------------------


class Hand:
    """A hand-operated worker on the env's task list (no real Worker polls it)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.stub = env.client.worker_stub
        self.task_list = TaskList(name=env.task_list)

    async def poll_decision(self) -> W.PollForDecisionTaskResponse:
        request = W.PollForDecisionTaskRequest(
            domain=self.env.client.domain, task_list=self.task_list, identity="hand"
        )
        for _ in range(5):
            response = await self.stub.PollForDecisionTask(request, timeout=10)
            if response.task_token:
                events = list(response.history.events)
                assert kind(events[0]) == "workflow_execution_started"
                assert kind(events[-1]) == "decision_task_started", kinds(events)
                assert [e.event_id for e in events] == list(range(1, len(events) + 1))
                assert response.started_event_id == events[-1].event_id
                assert response.next_event_id == response.started_event_id + 1
                return response
        raise AssertionError("no decision task")

    async def complete(self, task: Any, *decisions: decision_pb2.Decision) -> None:
        await self.stub.RespondDecisionTaskCompleted(
            W.RespondDecisionTaskCompletedRequest(
                task_token=task.task_token, decisions=list(decisions), identity="hand"
            ),
            timeout=10,
        )

    async def signal(self, execution: WorkflowExecution, value: str) -> None:
        await self.env.client.signal_workflow(execution.workflow_id, execution.run_id, "add", value)


def complete_workflow(result_json: bytes = b'"done"') -> decision_pb2.Decision:
    return decision_pb2.Decision(
        complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
            result=Payload(data=result_json)
        )
    )


def schedule_activity(activity_id: str) -> decision_pb2.Decision:
    attrs = decision_pb2.ScheduleActivityTaskDecisionAttributes(
        activity_id=activity_id, activity_type=ActivityType(name="add_one"), input=Payload(data=b"1")
    )
    for name in (
        "schedule_to_close_timeout",
        "schedule_to_start_timeout",
        "start_to_close_timeout",
        "heartbeat_timeout",
    ):
        getattr(attrs, name).FromTimedelta(timedelta(seconds=30))
    return decision_pb2.Decision(schedule_activity_task_decision_attributes=attrs)


async def test_poll_replies_carry_every_field(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven", run_seconds=60)
        task = await hand.poll_decision()
        assert task.workflow_execution == execution
        assert task.workflow_type.name == "HandDriven"
        assert task.attempt == 0
        assert task.previous_started_event_id.value == 0  # Int64Value: unset or 0
        assert task.workflow_execution_task_list.name == env.task_list
        assert ts(task.scheduled_time) > 0 and ts(task.started_time) >= ts(task.scheduled_time)
        assert not task.HasField("query")
        await hand.complete(task, schedule_activity("a1"))

        poll = W.PollForActivityTaskRequest(domain=domain, task_list=hand.task_list, identity="hand")
        activity = await hand.stub.PollForActivityTask(poll, timeout=10)
        assert activity.task_token
        assert activity.workflow_execution == execution
        assert (activity.activity_id, activity.activity_type.name, activity.input.data) == (
            "a1",
            "add_one",
            b"1",
        )
        assert (activity.workflow_type.name, activity.workflow_domain, activity.attempt) == (
            "HandDriven",
            domain,
            0,
        )
        assert activity.start_to_close_timeout.seconds == 30 and activity.heartbeat_timeout.seconds == 30
        assert ts(activity.started_time) >= ts(activity.scheduled_time) > 0
        await hand.stub.RespondActivityTaskCompleted(
            W.RespondActivityTaskCompletedRequest(task_token=activity.task_token, result=Payload(data=b"2")),
            timeout=10,
        )

        second = await hand.poll_decision()
        assert second.previous_started_event_id.value == task.started_event_id
        assert kinds(list(second.history.events))[-4:] == [
            "activity_task_started",
            "activity_task_completed",
            "decision_task_scheduled",
            "decision_task_started",
        ]
        await hand.complete(second, complete_workflow())
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"


async def test_events_arriving_during_a_decision_are_buffered(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven")
        task = await hand.poll_decision()
        await hand.signal(execution, "one")
        await hand.signal(execution, "two")
        # While the decision is started the signals are not in history yet.
        assert kinds(await get_history(env.client, execution))[-1] == "decision_task_started"
        await hand.complete(task, schedule_activity("a1"))
        ks = kinds(await get_history(env.client, execution))
        assert ks[3:] == [
            "decision_task_completed",
            "activity_task_scheduled",
            "workflow_execution_signaled",
            "workflow_execution_signaled",
            "decision_task_scheduled",
        ], ks
        task = await hand.poll_decision()
        await hand.complete(task, complete_workflow())
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"


async def test_completion_while_events_are_buffered_fails_the_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven")
        task = await hand.poll_decision()
        await hand.signal(execution, "late news")
        try:
            await hand.complete(task, complete_workflow())
        except Exception:  # noqa: BLE001 - the client ignores this reply; history is the contract
            pass
        events = await get_history(env.client, execution)
        ks = kinds(events)
        assert "workflow_execution_completed" not in ks, ks
        failed = next(
            e for e in events if kind(e) == "decision_task_failed"
        ).decision_task_failed_event_attributes
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
        assert "workflow_execution_signaled" in ks
        # A new decision sees the signal and may complete.
        task = await hand.poll_decision()
        assert "workflow_execution_signaled" in kinds(list(task.history.events))
        await hand.complete(task, complete_workflow())
        close, _ = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"


async def test_decision_timeout_reschedules(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven", task_start_to_close_timeout=timedelta(seconds=1))
        first = await hand.poll_decision()
        # Do not answer: after 1 s the decision times out and is scheduled again.
        second = await hand.poll_decision()
        assert second.attempt == 1, second.attempt
        assert second.task_token != first.task_token
        assert "decision_task_timed_out" in kinds(list(second.history.events))
        await hand.complete(second, complete_workflow())
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"
        timed = next(
            e for e in events if kind(e) == "decision_task_timed_out"
        ).decision_task_timed_out_event_attributes
        assert timed.timeout_type == T.TIMEOUT_TYPE_START_TO_CLOSE


async def test_decision_failure_is_recorded_and_retried(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven")
        task = await hand.poll_decision()
        await hand.stub.RespondDecisionTaskFailed(
            W.RespondDecisionTaskFailedRequest(
                task_token=task.task_token,
                cause=workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION,
                details=Payload(data=b"nondeterministic, says the worker"),
                identity="hand",
            ),
            timeout=10,
        )
        retry = await hand.poll_decision()
        assert retry.attempt == 1
        await hand.complete(retry, complete_workflow())
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_completed"
        failed = next(
            e for e in events if kind(e) == "decision_task_failed"
        ).decision_task_failed_event_attributes
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
        assert failed.failure.details == b"nondeterministic, says the worker"
        assert failed.identity == "hand"


async def test_terminate_with_a_started_decision_fails_it_first(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start("HandDriven")
        await hand.poll_decision()
        await env.client.workflow_stub.TerminateWorkflowExecution(
            TerminateWorkflowExecutionRequest(domain=domain, workflow_execution=execution, reason="stop"),
            timeout=10,
        )
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_terminated"
        assert kinds(events)[-3:] == [
            "decision_task_started",
            "decision_task_failed",
            "workflow_execution_terminated",
        ]
        failed = events[-2].decision_task_failed_event_attributes
        assert failed.cause == workflow_pb2.DECISION_TASK_FAILED_CAUSE_FORCE_CLOSE_DECISION


async def test_workflow_timeout_with_a_started_decision(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        hand = Hand(env)
        execution = await env.start(
            "HandDriven", run_seconds=2, task_start_to_close_timeout=timedelta(seconds=30)
        )
        await hand.poll_decision()
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_timed_out"
        assert (
            close.workflow_execution_timed_out_event_attributes.timeout_type == T.TIMEOUT_TYPE_START_TO_CLOSE
        )
        # check_history (in finish) already refused a DecisionTaskStarted left dangling.
        assert kinds(events)[-2] in ("decision_task_failed", "decision_task_timed_out"), kinds(events)


async def test_workflow_timeout_of_an_idle_run(server: Any, domain: str) -> None:
    async with running(server.address, domain, worker=False) as env:
        execution = await env.start("HandDriven", run_seconds=1)
        close, events = await finish(env.client, execution)
        assert kind(close) == "workflow_execution_timed_out"
        assert ts(close.event_time) >= ts(events[0].event_time) + 1
