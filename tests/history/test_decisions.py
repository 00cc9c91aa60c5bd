"""Decision rules of client-contract §4a: buffering, contiguous outputs, unhandled decisions, failures."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from cadence.api.v1 import decision_pb2, service_worker_pb2, workflow_pb2

from cadence_fast import errors
from cadence_fast.history import tokens
from cadence_fast.persistence.records import TaskListType
from tests.history.harness import (
    Env,
    assert_dense,
    cancel_activity,
    complete_workflow,
    kinds,
    payload,
    schedule_activity,
    seconds,
    start_timer,
)


@pytest.fixture
async def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = await Env(tmp_path / "h.db").open()
    yield e
    await e.close()


async def test_signal_during_started_decision_is_buffered_then_flushed(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.signal(wf, "s1", '"a"')
        # not yet in history: buffered behind the started decision
        assert kinds(await env.history_events(wf))[-1] == "decision_task_started"
        await env.complete_decision(task.task_token, [schedule_activity("0"), schedule_activity("1")])
        events = await env.history_events(wf)
        assert_dense(events)
        assert kinds(events)[3:] == [
            "decision_task_completed", "activity_task_scheduled", "activity_task_scheduled",
            "workflow_execution_signaled", "decision_task_scheduled",
        ]  # fmt: skip
        assert [
            e.activity_task_scheduled_event_attributes.decision_task_completed_event_id for e in events[4:6]
        ] == [4, 4]
        task = await env.poll_decision()
        assert task is not None and task.history.events[-1].event_id == task.started_event_id
    finally:
        await env.close()


async def test_completion_with_buffered_events_fails_as_unhandled(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.signal(wf, "late", '"x"')
        await env.complete_decision(task.task_token, [complete_workflow()])
        events = await env.history_events(wf)
        # the retry is transient (Cadence): no Scheduled event until it completes
        assert kinds(events)[3:] == ["decision_task_failed", "workflow_execution_signaled"]
        assert events[3].decision_task_failed_event_attributes.cause == (
            workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
        )
        task = await env.poll_decision()
        assert task is not None
        assert task.attempt == 1
        # the poll reply carries the transient decision's events after the persisted ones
        assert kinds(task.history.events)[-2:] == ["decision_task_scheduled", "decision_task_started"]
        assert task.history.events[-1].event_id == task.started_event_id == 7
        await env.complete_decision(task.task_token, [complete_workflow()])
        events = await env.history_events(wf)
        assert_dense(events)
        assert kinds(events)[5:] == [
            "decision_task_scheduled", "decision_task_started", "decision_task_completed",
            "workflow_execution_completed",
        ]  # fmt: skip
        assert events[5].decision_task_scheduled_event_attributes.attempt == 1
        close = await env.close_event(wf)
        assert (
            close is not None and close.workflow_execution_completed_event_attributes.result.data == b'"done"'
        )
    finally:
        await env.close()


async def test_bad_attributes_fail_the_decision_and_keep_nothing(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    lists: list[str] = []  # one task list per case
    try:

        async def failed_cause(decisions: list[decision_pb2.Decision]) -> int:
            lists.append(f"case-{len(lists)}")
            wf, _ = await env.start(task_list=lists[-1])
            task = await env.poll_decision(lists[-1])
            assert task is not None
            await env.complete_decision(task.task_token, decisions)
            events = await env.history_events(wf)
            assert kinds(events)[3:] == ["decision_task_failed"]  # nothing of the batch is kept
            return int(events[3].decision_task_failed_event_attributes.cause)

        assert await failed_cause([schedule_activity("ok"), schedule_activity("")]) == (
            workflow_pb2.DECISION_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
        )
        assert (
            await env.poll_activity("case-0", timeout=0.5) is None
        )  # the good activity of the bad batch is gone
        assert await failed_cause([schedule_activity("a"), schedule_activity("a")]) == (
            workflow_pb2.DECISION_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID
        )
        unsupported = decision_pb2.Decision(
            start_child_workflow_execution_decision_attributes=decision_pb2.StartChildWorkflowExecutionDecisionAttributes()
        )
        assert (
            await failed_cause([unsupported])
            == workflow_pb2.DECISION_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES
        )
        # the transient retries of the three runs: a second bad answer leaves no trace, a good one completes
        for task_list in lists:
            task = await env.poll_decision(task_list)
            assert task is not None and task.attempt == 1
            wf = task.workflow_execution.workflow_id
            await env.complete_decision(task.task_token, [schedule_activity("")])
            assert kinds(await env.history_events(wf))[-1] == "decision_task_failed"
            task = await env.poll_decision(task_list, timeout=5)  # attempt 2, after a short backoff
            assert task is not None and task.attempt == 2
            await env.complete_decision(task.task_token, [complete_workflow()])
            events = await env.history_events(wf)
            assert_dense(events)
            assert kinds(events)[3:] == [
                "decision_task_failed", "decision_task_scheduled", "decision_task_started",
                "decision_task_completed", "workflow_execution_completed",
            ]  # fmt: skip
    finally:
        await env.close()


async def test_respond_decision_failed_reschedules_with_backoff(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        for attempt in range(3):
            task = await env.poll_decision(timeout=5)
            assert task is not None and task.attempt == attempt
            await env.history.respond_decision_task_failed(
                service_worker_pb2.RespondDecisionTaskFailedRequest(
                    task_token=task.task_token,
                    cause=workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION,
                    details=payload("boom"),
                    identity="worker",
                )
            )
        events = await env.history_events(wf)
        # the third failure waits for a backoff timer: no decision scheduled right away
        assert kinds(events)[-1] == "decision_task_failed"
        assert events[-1].decision_task_failed_event_attributes.failure.details == b"boom"
        task = await env.poll_decision(timeout=5)
        assert task is not None and task.attempt == 3
        # stale token: the decision moved on
        with pytest.raises(errors.EntityNotExistsError):
            await env.history.respond_decision_task_failed(
                service_worker_pb2.RespondDecisionTaskFailedRequest(
                    task_token=dataclasses.replace(tokens.decode(task.task_token), attempt=9).encode()
                )
            )
    finally:
        await env.close()


async def test_malformed_and_stale_tokens(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        with pytest.raises(errors.BadRequestError, match="task_token"):
            await env.complete_decision(b"garbage", [])
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [schedule_activity("0")])
        with pytest.raises(errors.EntityNotExistsError):
            await env.complete_decision(task.task_token, [])
        act = await env.poll_activity()
        assert act is not None
        await env.history.respond_activity_task_completed(
            service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=act.task_token)
        )
        with pytest.raises(errors.EntityNotExistsError):
            await env.history.respond_activity_task_completed(
                service_worker_pb2.RespondActivityTaskCompletedRequest(task_token=act.task_token)
            )
        with pytest.raises(errors.EntityNotExistsError):
            await env.history.record_activity_task_heartbeat(
                service_worker_pb2.RecordActivityTaskHeartbeatRequest(task_token=act.task_token)
            )
    finally:
        await env.close()


async def test_cancel_activity_not_started_and_started(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(
            task.task_token, [schedule_activity("0"), schedule_activity("1", task_list="other")]
        )
        act = await env.poll_activity()
        assert act is not None and act.activity_id == "0"
        task = await env.poll_decision(timeout=0.5)
        assert task is None  # the activity's Started event alone schedules no decision
        # force a decision with a signal, then cancel both activities
        await env.signal(wf, "go", '""')
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(
            task.task_token, [cancel_activity("0"), cancel_activity("1"), cancel_activity("x")]
        )
        events = await env.history_events(wf)
        assert kinds(events)[-5:] == [
            "activity_task_cancel_requested", "activity_task_cancel_requested", "request_cancel_activity_task_failed",
            "activity_task_canceled", "decision_task_scheduled",
        ]  # fmt: skip
        canceled = [e for e in events if e.HasField("activity_task_canceled_event_attributes")]
        assert len(canceled) == 1
        assert canceled[0].activity_task_canceled_event_attributes.scheduled_event_id == 6
        hb = await env.history.record_activity_task_heartbeat(
            service_worker_pb2.RecordActivityTaskHeartbeatRequest(task_token=act.task_token)
        )
        assert hb.cancel_requested
        await env.history.respond_activity_task_canceled(
            service_worker_pb2.RespondActivityTaskCanceledRequest(
                task_token=act.task_token, identity="worker"
            )
        )
        events = await env.history_events(wf)
        last_canceled = [e for e in events if e.HasField("activity_task_canceled_event_attributes")][-1]
        attrs = last_canceled.activity_task_canceled_event_attributes
        assert (
            attrs.scheduled_event_id == 5
            and attrs.started_event_id > 0
            and attrs.latest_cancel_requested_event_id > 0
        )
        assert_dense(events)
    finally:
        await env.close()


async def test_timer_fires_and_cancel(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [start_timer("t1", 0.3), start_timer("t2", 30)])
        task = await env.poll_decision(timeout=5)
        assert task is not None
        events = list(task.history.events)
        fired = [e for e in events if e.HasField("timer_fired_event_attributes")]
        started = [e for e in events if e.HasField("timer_started_event_attributes")]
        assert fired[0].timer_fired_event_attributes.timer_id == "t1"
        elapsed = (fired[0].event_time.ToNanoseconds() - started[0].event_time.ToNanoseconds()) / 1e9
        assert elapsed >= 0.3
        cancel = decision_pb2.Decision(
            cancel_timer_decision_attributes=decision_pb2.CancelTimerDecisionAttributes(timer_id="t2")
        )
        await env.complete_decision(task.task_token, [cancel, complete_workflow()])
        events = await env.history_events(wf)
        assert kinds(events)[-2:] == ["timer_canceled", "workflow_execution_completed"]
    finally:
        await env.close()


async def test_cancel_of_a_buffered_firing_then_complete_in_one_decision(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [start_timer("t1", 0.3)])
        await env.signal(wf, "wake", '""')
        task = await env.poll_decision()
        assert task is not None
        await asyncio.sleep(0.8)  # the timer fires while this decision is started: buffered
        assert "timer_fired" not in kinds(await env.history_events(wf))
        cancel = decision_pb2.Decision(
            cancel_timer_decision_attributes=decision_pb2.CancelTimerDecisionAttributes(timer_id="t1")
        )
        await env.complete_decision(task.task_token, [cancel, complete_workflow()])
        events = await env.history_events(wf)
        assert kinds(events)[-3:] == [
            "decision_task_completed",
            "timer_canceled",
            "workflow_execution_completed",
        ]
        assert "timer_fired" not in kinds(events)
        assert_dense(events)
    finally:
        await env.close()


def upsert(fields: dict[str, str]) -> decision_pb2.Decision:
    from cadence.api.v1 import common_pb2

    return decision_pb2.Decision(
        upsert_workflow_search_attributes_decision_attributes=(
            decision_pb2.UpsertWorkflowSearchAttributesDecisionAttributes(
                search_attributes=common_pb2.SearchAttributes(
                    indexed_fields={k: payload(v) for k, v in fields.items()}
                )
            )
        )
    )


async def test_search_attributes_are_validated_at_start_and_upsert(tmp_path: Path) -> None:
    from cadence.api.v1 import common_pb2

    env = await Env(tmp_path / "h.db").open()
    try:
        with pytest.raises(errors.BadRequestError, match="NoSuchAttribute"):
            await env.start(
                search_attributes=common_pb2.SearchAttributes(
                    indexed_fields={"NoSuchAttribute": payload('"x"')}
                )
            )
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [upsert({"CadenceChangeVersion": '["v-1"]'})])
        events = await env.history_events(wf)
        assert kinds(events)[-1] == "upsert_workflow_search_attributes"
        await env.signal(wf, "s", '""')
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [upsert({"CustomIntField": '"not an int"'})])
        events = await env.history_events(wf)
        failed = [e for e in events if e.HasField("decision_task_failed_event_attributes")]
        assert failed[-1].decision_task_failed_event_attributes.cause == (
            workflow_pb2.DECISION_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
        )
    finally:
        await env.close()


async def test_activity_timeouts_stretch_to_the_retry_expiration(tmp_path: Path) -> None:
    from cadence.api.v1 import common_pb2

    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start(execution_timeout=60)
        task = await env.poll_decision()
        assert task is not None
        with_expiration = common_pb2.RetryPolicy(maximum_attempts=3, expiration_interval=seconds(40))
        without = common_pb2.RetryPolicy(maximum_attempts=3)
        await env.complete_decision(
            task.task_token,
            [
                schedule_activity("a", s2s=10, s2c=30, retry=with_expiration),
                schedule_activity("b", s2s=10, retry=without),
            ],
        )
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in await env.history_events(wf)
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert [a.schedule_to_start_timeout.seconds for a in scheduled] == [40, 60]
        assert [a.schedule_to_close_timeout.seconds for a in scheduled] == [40, 60]
    finally:
        await env.close()


async def test_events_during_a_transient_decision_make_it_real(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.history.respond_decision_task_failed(
            service_worker_pb2.RespondDecisionTaskFailedRequest(
                task_token=task.task_token, cause=workflow_pb2.DECISION_TASK_FAILED_CAUSE_UNHANDLED_DECISION
            )
        )
        await env.signal(wf, "s", '"x"')  # arrives while the transient retry is only scheduled
        task = await env.poll_decision()
        assert task is not None and task.attempt == 0
        events = await env.history_events(wf)
        assert kinds(events)[3:] == [
            "decision_task_failed", "workflow_execution_signaled", "decision_task_scheduled", "decision_task_started",
        ]  # fmt: skip
        assert_dense(events)
        await env.complete_decision(task.task_token, [complete_workflow()])
        assert kinds(await env.history_events(wf))[-1] == "workflow_execution_completed"
    finally:
        await env.close()


async def test_decision_poll_reply_carries_the_backlog_hint(tmp_path: Path) -> None:
    # three decisions wait on a list nobody polls; the first poll's reply counts the two behind it
    env = await Env(tmp_path / "h.db").open()
    try:
        for i in range(3):
            await env.start(f"backlog-{i}", task_list="backlogged")
        decisions = (env.domain.id, "backlogged", TaskListType.DECISION)
        for _ in range(1000):  # the transfer queue hands them to matching asynchronously
            if env.matching.backlog_hint(*decisions) == 3:
                break
            await asyncio.sleep(0.01)
        first = await env.poll_decision("backlogged")
        assert first is not None and first.backlog_count_hint == 2
        for _ in range(2):
            assert await env.poll_decision("backlogged") is not None
        assert await env.poll_decision("backlogged", timeout=0.2) is None
    finally:
        await env.close()
