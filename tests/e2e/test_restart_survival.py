"""Issue 4: every timer, retry and cron behaviour survives a server restart in the middle.

One server per variant (SIGTERM: a clean shutdown; SIGKILL: a crash), restarted on the same
SQLite file and port while a user timer, a timer about to be cancelled, an activity retry
backoff, a workflow retry backoff, a workflow execution timeout and a cron schedule are all
pending. The worker and its
client stay up across the restart (they retry UNAVAILABLE, as real workers do). Each
pending thing must happen after the restart, exactly once, never early."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import DescribeWorkflowExecutionRequest
from cadence.client import Client
from issue4_helpers import (
    ATTEMPTS,
    FAST_RECONNECT,
    attrs,
    count,
    first,
    next_run,
    running,
    started_attrs,
    terminate,
    ts,
    wait_until,
)
from workflows import finish, get_history, kind, kinds, register_domain, result, wait_close

#: Long enough that nothing pending fires before the server is down (so it must fire
#: after the restart), short enough to keep the test quick.
PENDING_SECONDS = 5
CRON = workflow_pb2.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
RETRY = workflow_pb2.CONTINUE_AS_NEW_INITIATOR_RETRY_POLICY


async def wait_for_retry(client: Client, execution: WorkflowExecution) -> Any:
    """The run's pending activity once the server recorded attempt 0's failure (its retry
    now waits for the backoff), as DescribeWorkflowExecution shows it."""
    request = DescribeWorkflowExecutionRequest(domain=client.domain, workflow_execution=execution)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        described = await client.workflow_stub.DescribeWorkflowExecution(request, timeout=10)
        pending = list(described.pending_activities)
        if pending and pending[0].attempt > 0:
            return pending[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempt 0 of {execution.workflow_id} never failed")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_timers_retries_and_cron_survive_a_restart(server_factory: Any, sig: signal.Signals) -> None:
    server = server_factory().start()
    domain = f"restart-{sig.name.lower()}"
    await asyncio.to_thread(register_domain, server.address, domain)

    async with running(server.address, domain, channel_arguments=FAST_RECONNECT) as env:
        client = env.client
        timer = await env.start("I4Timer", PENDING_SECONDS)
        cancel_timer = await env.start("I4CancelTimer", 1)
        retrying = await env.start("I4RetryActivity", 1, False, {"initial": PENDING_SECONDS}, 3)
        policy = {"initial_interval": timedelta(seconds=PENDING_SECONDS), "maximum_attempts": 2}
        failing = await env.start("I4Fail", "retry me", retry_policy=policy)
        cron = await env.start("I4Echo", "tick", cron_schedule="@every 2s")
        # A workflow execution timeout: the run waits for a signal that never comes.
        idle = await env.start("I4Collector", 1, run_seconds=PENDING_SECONDS)

        # Everything is pending: both timers started, attempt 0 failed (its retry waits),
        # the failed first run continued by RETRY_POLICY (its next run waits its backoff).
        await wait_until(client, timer, lambda e: "timer_started" in kinds(e), "TimerStarted")
        await wait_until(client, cancel_timer, lambda e: "timer_started" in kinds(e), "TimerStarted")
        close = await wait_close(client, failing)
        assert close.workflow_execution_continued_as_new_event_attributes.initiator == RETRY
        pending = await wait_for_retry(client, retrying)
        assert pending.attempt == 1 and pending.last_failure.reason == "FlakyError"
        assert [a for a, _, _ in ATTEMPTS[retrying.workflow_id]] == [0]

        first_started = (await get_history(client, timer))[0].event_time
        if sig == signal.SIGKILL:
            server.kill()
        else:
            assert server.stop(sig) == 0, "the server did not shut down cleanly on SIGTERM"
        down_at = time.time()
        # All of the above must fit well within PENDING_SECONDS of the first start, or the
        # pending work could have come due before the restart (and nothing was tested).
        assert down_at - ts(first_started) < PENDING_SECONDS - 1, "setup too slow for PENDING_SECONDS"
        server.start()

        # The user timer fires once, after the restart, never early.
        assert await result(client, timer, str, within=30) == f"slept {float(PENDING_SECONDS)}"
        _, events = await finish(client, timer)
        started, fired = first(events, "timer_started"), first(events, "timer_fired")
        assert count(events, "timer_fired") == 1
        assert ts(fired.event_time) >= ts(started.event_time) + PENDING_SECONDS
        assert ts(fired.event_time) > down_at, "the timer fired before the restart: nothing was tested"

        # A timer started before the restart is cancelled after it.
        await client.signal_workflow(cancel_timer.workflow_id, "", "cancel")
        assert await result(client, cancel_timer, str) == "long timer cancelled, short timer fired"
        _, events = await finish(client, cancel_timer)
        long_timer = first(events, "timer_started")
        assert attrs(first(events, "timer_canceled")).started_event_id == long_timer.event_id
        fired_ids = [attrs(e).timer_id for e in events if kind(e) == "timer_fired"]
        assert len(fired_ids) == 1 and attrs(long_timer).timer_id not in fired_ids

        # The activity retry: attempt 1 runs once, after the restart and the backoff, with
        # attempt 0's heartbeat details.
        assert await result(client, retrying, int, within=30) == 1
        seen = ATTEMPTS[retrying.workflow_id]
        assert [(a, d) for a, d, _ in seen] == [(0, []), (1, ["beat of attempt 0"])]
        assert seen[1][2] > down_at and seen[1][2] - seen[0][2] >= PENDING_SECONDS
        _, events = await finish(client, retrying)
        assert "activity_task_failed" not in kinds(events)
        assert attrs(first(events, "activity_task_started")).attempt == 1

        # The workflow retry: the second run's first decision comes after its backoff and
        # the restart, and its failure is final.
        second = next_run(close, failing)
        close, events = await finish(client, second, within=30)
        assert kind(close) == "workflow_execution_failed", kinds(events)
        assert started_attrs(events).attempt == 1
        scheduled = first(events, "decision_task_scheduled")
        assert ts(scheduled.event_time) >= ts(events[0].event_time) + PENDING_SECONDS - 0.001
        assert ts(scheduled.event_time) > down_at

        # The run's execution timeout fires after the restart.
        close, events = await finish(client, idle, within=30)
        assert kind(close) == "workflow_execution_timed_out", kinds(events)
        assert ts(close.event_time) >= ts(events[0].event_time) + PENDING_SECONDS
        assert ts(close.event_time) > down_at

        # The cron schedule goes on after the restart, one run at a time.
        run, previous, runs_after = cron, "", 0
        for _ in range(30):
            close, events = await finish(client, run, within=30)
            assert kind(close) == "workflow_execution_continued_as_new", kinds(events)
            assert close.workflow_execution_continued_as_new_event_attributes.initiator == CRON
            # Each run continues the one before: none lost or doubled by the restart.
            assert started_attrs(events).continued_execution_run_id == previous
            if ts(close.event_time) > down_at:
                runs_after += 1
                if runs_after == 2:
                    break
            previous, run = run.run_id, next_run(close, run)
        else:
            raise AssertionError("the cron schedule stopped at the restart")
        await terminate(client, WorkflowExecution(workflow_id=cron.workflow_id))
    server.stop()
