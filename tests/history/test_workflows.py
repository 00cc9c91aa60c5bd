"""Workflow-level requests: start (idempotency, reuse policies, delayed start), signals, cancel,
terminate, describe, history paging and long polls, and the timeouts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cadence.api.v1 import (
    common_pb2,
    history_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    workflow_pb2,
)

from cadence_fast import errors
from tests.history.harness import (
    DOMAIN,
    Env,
    assert_dense,
    complete_workflow,
    kinds,
    payload,
    schedule_activity,
    seconds,
)


def execution(wf: str, run_id: str = "") -> common_pb2.WorkflowExecution:
    return common_pb2.WorkflowExecution(workflow_id=wf, run_id=run_id)


async def test_start_is_idempotent_and_reuse_policies(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        req = env.start_request("same-id")
        first = await env.history.start_workflow(env.domain, req)
        again = await env.history.start_workflow(env.domain, req)  # a client retry: same request id
        assert again.run_id == first.run_id
        with pytest.raises(errors.WorkflowExecutionAlreadyStartedError) as info:
            await env.start("same-id")
        assert info.value.run_id == first.run_id
        # TERMINATE_IF_RUNNING: the open run is terminated, a new one starts
        _, second = await env.start(
            "same-id", workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING
        )
        assert second != first.run_id
        old = await env.history_events("same-id", first.run_id)
        assert kinds(old)[-1] == "workflow_execution_terminated"
        # closed by terminate: FAILED_ONLY allows a new run
        await env.history.terminate_workflow(
            env.domain,
            service_workflow_pb2.TerminateWorkflowExecutionRequest(
                domain=DOMAIN, workflow_execution=execution("same-id")
            ),
        )
        _, third = await env.start("same-id")
        # completed successfully: FAILED_ONLY and REJECT refuse, ALLOW_DUPLICATE starts
        task = await env.poll_decision()
        assert task is not None and task.workflow_execution.run_id == third
        await env.complete_decision(task.task_token, [complete_workflow()])
        with pytest.raises(errors.WorkflowExecutionAlreadyStartedError):
            await env.start("same-id")
        with pytest.raises(errors.WorkflowExecutionAlreadyStartedError):
            await env.start(
                "same-id", workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
            )
        _, fourth = await env.start(
            "same-id", workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
        )
        assert len({first.run_id, second, third, fourth}) == 4
    finally:
        await env.close()


async def test_started_event_carries_memo_header_and_delay(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start(
            memo=common_pb2.Memo(fields={"m": payload("1")}),
            header=common_pb2.Header(fields={"h": payload("2")}),
            search_attributes=common_pb2.SearchAttributes(
                indexed_fields={"CustomKeywordField": payload('"k"')}
            ),
            delay_start=seconds(0.5),
        )
        assert await env.poll_decision(timeout=0.2) is None  # the first decision waits for the delay
        task = await env.poll_decision(timeout=5)
        assert task is not None
        started = task.history.events[0].workflow_execution_started_event_attributes
        assert started.memo.fields["m"].data == b"1"
        assert started.header.fields["h"].data == b"2"
        assert started.search_attributes.indexed_fields["CustomKeywordField"].data == b'"k"'
        assert started.first_decision_task_backoff.ToNanoseconds() == 500_000_000
        desc = await env.history.describe_workflow(
            env.domain,
            service_workflow_pb2.DescribeWorkflowExecutionRequest(
                domain=DOMAIN, workflow_execution=execution(wf)
            ),
        )
        assert desc.workflow_execution_info.memo.fields["m"].data == b"1"
        assert desc.pending_decision.state == workflow_pb2.PENDING_DECISION_STATE_STARTED
    finally:
        await env.close()


async def test_signals_in_order_deduplicated_and_signal_with_start(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        req = service_workflow_pb2.SignalWithStartWorkflowExecutionRequest(
            start_request=env.start_request("sws"), signal_name="first", signal_input=payload('"0"')
        )
        resp = await env.history.signal_with_start_workflow(env.domain, req)
        for i in range(1, 6):
            await env.signal("sws", f"s{i}", f'"{i}"', request_id=f"req-{i}")
        await env.signal("sws", "s1", '"dup"', request_id="req-1")  # a retry: dropped
        again = await env.history.signal_with_start_workflow(env.domain, req)
        assert again.run_id == resp.run_id
        events = await env.history_events("sws")
        assert kinds(events)[:3] == [
            "workflow_execution_started",
            "workflow_execution_signaled",
            "decision_task_scheduled",
        ]
        names = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in events
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert names == ["first", "s1", "s2", "s3", "s4", "s5", "first"]
        assert kinds(events).count("decision_task_scheduled") == 1  # at most one decision pending
    finally:
        await env.close()


async def test_cancel_terminate_and_closed_run_errors(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, run_id = await env.start()
        task = await env.poll_decision()
        assert task is not None
        cancel = service_workflow_pb2.RequestCancelWorkflowExecutionRequest(
            domain=DOMAIN, workflow_execution=execution(wf), identity="test", request_id="c1"
        )
        await env.history.request_cancel_workflow(env.domain, cancel)
        await env.history.request_cancel_workflow(env.domain, cancel)  # same request id: a retry
        cancel.request_id = "c2"
        with pytest.raises(errors.CancellationAlreadyRequestedError):
            await env.history.request_cancel_workflow(env.domain, cancel)
        # terminate with a started decision: DecisionTaskFailed first, then the buffered cancel request
        await env.history.terminate_workflow(
            env.domain,
            service_workflow_pb2.TerminateWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=execution(wf),
                reason="enough",
                details=payload("d"),
                identity="t",
            ),
        )
        events = await env.history_events(wf)
        assert_dense(events)
        assert kinds(events)[3:] == [
            "decision_task_failed",
            "workflow_execution_cancel_requested",
            "workflow_execution_terminated",
        ]
        assert (
            events[3].decision_task_failed_event_attributes.cause
            == workflow_pb2.DECISION_TASK_FAILED_CAUSE_FORCE_CLOSE_DECISION
        )
        with pytest.raises(errors.WorkflowExecutionAlreadyCompletedError):
            await env.signal(wf, "s", '""')
        with pytest.raises(errors.WorkflowExecutionAlreadyCompletedError):
            await env.history.terminate_workflow(
                env.domain,
                service_workflow_pb2.TerminateWorkflowExecutionRequest(
                    domain=DOMAIN, workflow_execution=execution(wf)
                ),
            )
        with pytest.raises(errors.EntityNotExistsError):
            await env.complete_decision(task.task_token, [complete_workflow()])
        with pytest.raises(errors.EntityNotExistsError):
            await env.signal("no-such-workflow", "s", '""')
        close = await env.close_event(wf)
        assert close is not None and close.workflow_execution_terminated_event_attributes.reason == "enough"
    finally:
        await env.close()


async def test_history_pages_and_long_poll(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, run_id = await env.start()
        for i in range(5):
            await env.signal(wf, f"s{i}", '""')
        req = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
            domain=DOMAIN, workflow_execution=execution(wf), page_size=3
        )
        seen: list[history_pb2.HistoryEvent] = []
        while True:
            resp = await env.history.get_workflow_history(env.domain, req, 5)
            seen.extend(resp.history.events)
            if not resp.next_page_token:
                break
            req.next_page_token = resp.next_page_token
        assert [e.event_id for e in seen] == list(range(1, 8))
        # long poll: waits for the next event
        poll = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
            domain=DOMAIN, workflow_execution=execution(wf), wait_for_new_event=True
        )
        first = await env.history.get_workflow_history(env.domain, poll, 5)
        assert first.next_page_token
        poll.next_page_token = first.next_page_token
        waiter = asyncio.ensure_future(env.history.get_workflow_history(env.domain, poll, 5))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await env.signal(wf, "wake", '""')
        got = await asyncio.wait_for(waiter, 5)
        assert [e.event_id for e in got.history.events] == [8]
        # close-event long poll returns before its deadline on an open run, empty
        close_poll = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
            domain=DOMAIN, workflow_execution=execution(wf), wait_for_new_event=True,
            history_event_filter_type=history_pb2.EVENT_FILTER_TYPE_CLOSE_EVENT,
        )  # fmt: skip
        empty = await env.history.get_workflow_history(env.domain, close_poll, 0.2)
        assert not empty.history.events
    finally:
        await env.close()


async def test_timeouts(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        # decision start-to-close
        wf, _ = await env.start(task_timeout=0.5)
        task = await env.poll_decision()
        assert task is not None
        task = await env.poll_decision(timeout=5)
        assert task is not None and task.attempt == 1
        events = list(task.history.events)
        assert kinds(events)[3] == "decision_task_timed_out"
        # activity: start-to-close, heartbeat (kept alive by heartbeats first), schedule-to-start
        await env.complete_decision(task.task_token, [
            schedule_activity("stc", stc=0.5, s2c=30),
            schedule_activity("hb", stc=30, s2c=30, hb=0.6),
            schedule_activity("s2s", s2s=0.5, s2c=30, task_list="nobody"),
        ])  # fmt: skip
        acts = {}
        for _ in range(2):
            a = await env.poll_activity()
            assert a is not None
            acts[a.activity_id] = a
        for _ in range(3):
            await asyncio.sleep(0.3)
            hb = await env.history.record_activity_task_heartbeat(
                service_worker_pb2.RecordActivityTaskHeartbeatRequest(
                    task_token=acts["hb"].task_token, details=payload("beat")
                )
            )
            assert not hb.cancel_requested
        desc = await env.history.describe_workflow(
            env.domain,
            service_workflow_pb2.DescribeWorkflowExecutionRequest(
                domain=DOMAIN, workflow_execution=execution(wf)
            ),
        )
        pending = {p.activity_id: p for p in desc.pending_activities}
        assert pending["hb"].heartbeat_details.data == b"beat"
        assert pending["hb"].state == workflow_pb2.PENDING_ACTIVITY_STATE_STARTED
        await asyncio.sleep(1.2)
        events = await env.history_events(wf)
        timed_out = {
            e.activity_task_timed_out_event_attributes.scheduled_event_id: e.activity_task_timed_out_event_attributes
            for e in events if e.HasField("activity_task_timed_out_event_attributes")
        }  # fmt: skip
        scheduled = {
            e.activity_task_scheduled_event_attributes.activity_id: e.event_id
            for e in events if e.HasField("activity_task_scheduled_event_attributes")
        }  # fmt: skip
        assert timed_out[scheduled["stc"]].timeout_type == workflow_pb2.TIMEOUT_TYPE_START_TO_CLOSE
        assert timed_out[scheduled["s2s"]].timeout_type == workflow_pb2.TIMEOUT_TYPE_SCHEDULE_TO_START
        assert timed_out[scheduled["hb"]].timeout_type == workflow_pb2.TIMEOUT_TYPE_HEARTBEAT
        assert timed_out[scheduled["hb"]].details.data == b"beat"
        assert_dense(events)
    finally:
        await env.close()


async def test_workflow_timeout_fails_started_decision_first(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start(execution_timeout=1)
        task = await env.poll_decision()
        assert task is not None
        close = await env.close_event(wf, timeout=5)
        assert close is not None and close.HasField("workflow_execution_timed_out_event_attributes")
        events = await env.history_events(wf)
        assert kinds(events)[3:] == ["decision_task_failed", "workflow_execution_timed_out"]
    finally:
        await env.close()


async def test_query_before_first_decision_on_closed_run_and_failures(tmp_path: Path) -> None:
    from cadence.api.v1 import query_pb2

    env = await Env(tmp_path / "h.db").open()
    try:
        wf, run_id = await env.start()

        def query_request(reject: int = 0) -> service_workflow_pb2.QueryWorkflowRequest:
            return service_workflow_pb2.QueryWorkflowRequest(
                domain=DOMAIN,
                workflow_execution=execution(wf),
                query=query_pb2.WorkflowQuery(query_type="state", query_args=payload('"arg"')),
                query_reject_condition=reject,  # type: ignore[arg-type]
            )

        async def answer(result: query_pb2.WorkflowQueryResult) -> list[str]:
            task = await env.poll_decision()
            assert task is not None and task.HasField("query")
            assert task.query.query_type == "state" and task.query.query_args.data == b'"arg"'
            await env.history.respond_query_task_completed(
                service_worker_pb2.RespondQueryTaskCompletedRequest(task_token=task.task_token, result=result)
            )
            return kinds(task.history.events)

        # before the first decision: history [Started, DecisionTaskScheduled] (the normal task waits)
        decision = await env.poll_decision()
        assert decision is not None
        query = asyncio.ensure_future(env.history.query_workflow(env.domain, query_request(), 10))
        seen = await answer(
            query_pb2.WorkflowQueryResult(
                result_type=query_pb2.QUERY_RESULT_TYPE_ANSWERED, answer=payload('"s"')
            )
        )
        assert seen[0] == "workflow_execution_started"
        assert (await query).query_result.data == b'"s"'
        query = asyncio.ensure_future(env.history.query_workflow(env.domain, query_request(), 10))
        await answer(
            query_pb2.WorkflowQueryResult(
                result_type=query_pb2.QUERY_RESULT_TYPE_FAILED, error_message="no handler"
            )
        )
        with pytest.raises(errors.QueryFailedError, match="no handler"):
            await query
        await env.complete_decision(decision.task_token, [complete_workflow()])
        # closed: answered by a worker unless rejected
        rejected = await env.history.query_workflow(
            env.domain, query_request(query_pb2.QUERY_REJECT_CONDITION_NOT_OPEN), 10
        )
        assert rejected.query_rejected.close_status == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
        query = asyncio.ensure_future(env.history.query_workflow(env.domain, query_request(), 10))
        await answer(
            query_pb2.WorkflowQueryResult(
                result_type=query_pb2.QUERY_RESULT_TYPE_ANSWERED, answer=payload("1")
            )
        )
        assert (await query).query_result.data == b"1"
        # no worker: a clean error before the deadline
        with pytest.raises(errors.QueryFailedError):
            await env.history.query_workflow(env.domain, query_request(), 1.5)
        assert len(await env.history_events(wf)) == 5  # queries write no events
    finally:
        await env.close()


async def test_strong_query_waits_for_the_pending_decision(tmp_path: Path) -> None:
    from cadence.api.v1 import query_pb2

    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        decision = await env.poll_decision()
        assert decision is not None
        query = asyncio.ensure_future(
            env.history.query_workflow(
                env.domain,
                service_workflow_pb2.QueryWorkflowRequest(
                    domain=DOMAIN,
                    workflow_execution=execution(wf),
                    query=query_pb2.WorkflowQuery(query_type="state"),
                    query_consistency_level=query_pb2.QUERY_CONSISTENCY_LEVEL_STRONG,
                ),
                10,
            )
        )
        assert await env.poll_decision(timeout=0.5) is None  # not offered while the decision is pending
        await env.complete_decision(decision.task_token, [schedule_activity("a")])
        task = await env.poll_decision()
        assert task is not None and task.HasField("query")
        assert "activity_task_scheduled" in kinds(task.history.events)  # it saw the decision's outputs
        await env.history.respond_query_task_completed(
            service_worker_pb2.RespondQueryTaskCompletedRequest(
                task_token=task.task_token,
                result=query_pb2.WorkflowQueryResult(
                    result_type=query_pb2.QUERY_RESULT_TYPE_ANSWERED, answer=payload("1")
                ),
            )
        )
        assert (await query).query_result.data == b"1"
    finally:
        await env.close()


async def test_history_count_limit_terminates_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cadence_fast.history import decisions

    monkeypatch.setattr(decisions, "HISTORY_COUNT_LIMIT", 5)
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [schedule_activity("a"), schedule_activity("b")])
        close = await env.close_event(wf)
        assert close is not None
        assert (
            close.workflow_execution_terminated_event_attributes.reason
            == "Workflow history size / count exceeds limit."
        )
    finally:
        await env.close()
