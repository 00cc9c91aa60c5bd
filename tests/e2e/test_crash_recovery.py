"""SIGKILL the server while workflows have decisions, activities, signals and timeouts
pending; restart it on the same SQLite file and port; every workflow completes as it
would have, with no duplicate and no lost event (workflows.check_history on each).

The worker and its client stay up across the crash: the client retries UNAVAILABLE, as
real workers do when a server restarts under them.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from cadence.api.v1 import workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import TerminateWorkflowExecutionRequest
from cadence.client import Client
from cadence.worker import Worker
from workflows import (
    finish,
    kind,
    kinds,
    register_domain,
    registry,
    result,
    running,
    wait_close,
    wait_for_event,
)

#: Reconnect to the restarted server within a second instead of gRPC's default backoff
#: (1 s growing x1.6), so the test waits for the server, not for the channel.
FAST_RECONNECT = {"grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500}


async def terminate(client: Client, workflow_id: str) -> None:
    request = TerminateWorkflowExecutionRequest(
        domain=client.domain,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        reason="test over",
    )
    await client.workflow_stub.TerminateWorkflowExecution(request, timeout=30)


def count(events: list[Any], k: str) -> int:
    return sum(1 for e in events if kind(e) == k)


async def test_sigkill_with_work_pending_then_restart(server_factory: Any) -> None:
    # The module's store is SQLite unless CADENCE_FAST_TEST_STORE names another one.
    server = server_factory(os.environ.get("CADENCE_FAST_TEST_STORE")).start()
    domain = f"crash-recovery-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_domain, server.address, domain)

    async with running(server.address, domain, channel_arguments=FAST_RECONNECT) as env:
        client = env.client
        # Activities running (and more to schedule) at the moment of the crash.
        slow = [await env.start("SlowStepsWorkflow", 3, 1.0) for _ in range(3)]
        fan_out = await env.start("FanOutWorkflow", 13)
        # A heartbeat timeout pending: the activity never heartbeats.
        silent = await env.start("MissingHeartbeatWorkflow", 3.0)
        # A workflow timeout pending: the workflow waits for a signal that never comes.
        blocked = await env.start("BlockingWorkflow", False, run_seconds=6)
        # A user timer and an activity retry backoff pending.
        timer = await env.start("TimerWorkflow", 3.0)
        retrying = await env.start("RetryingActivityWorkflow", 2, 5)
        # A cron workflow: its next runs are scheduled across the restart.
        cron = await env.start("EchoWorkflow", "tick", cron_schedule="@every 1s")
        # A signal before the crash, one after.
        collector = await env.start("SignalCollectorWorkflow", 2)
        await client.signal_workflow(collector.workflow_id, "", "add", "before")
        # A decision nobody polls for yet: its task list gets a worker only after the restart.
        idle_list = f"{env.task_list}-late"
        late = await env.start("OneActivityWorkflow", 99, task_list=idle_list)

        await wait_for_event(client, slow[0], "activity_task_started")
        await asyncio.sleep(0.5)
        server.kill()
        await asyncio.sleep(0.5)
        server.start()

        await client.signal_workflow(collector.workflow_id, "", "add", "after")
        async with Worker(client, idle_list, registry):
            assert await result(client, late, int, within=30) == 100

        for execution in slow:
            assert await result(client, execution, int, within=40) == 6
        assert await result(client, fan_out, int, within=40) == sum(range(2, 15))
        assert await result(client, collector, list[str], within=30) == ["before", "after"]

        close, events = await finish(client, silent, within=30)
        assert kind(close) == "workflow_execution_failed", kinds(events)
        timed_out = next(e for e in events if kind(e) == "activity_task_timed_out")
        assert (
            timed_out.activity_task_timed_out_event_attributes.timeout_type
            == workflow_pb2.TIMEOUT_TYPE_HEARTBEAT
        )

        assert await result(client, timer, str, within=30) == "woke up"
        assert await result(client, retrying, int, within=30) == 2
        # The cron chain goes on after the restart: some run starts after it.
        after_restart = time.time()  # everything below happens after the restart
        run = cron
        for _ in range(20):
            close = await wait_close(client, run, within=30)
            assert kind(close) == "workflow_execution_continued_as_new", kind(close)
            run = WorkflowExecution(
                workflow_id=cron.workflow_id,
                run_id=close.workflow_execution_continued_as_new_event_attributes.new_execution_run_id,
            )
            if close.event_time.seconds > after_restart:
                break
        else:
            raise AssertionError("the cron schedule stopped at the crash")
        await terminate(client, cron.workflow_id)

        close, events = await finish(client, blocked, within=30)
        assert kind(close) == "workflow_execution_timed_out", kinds(events)

    # No lost and no duplicated work: exact counts (check_history already refused any
    # activity started or closed twice and any gap in event ids).
    async with Client(domain=domain, target=server.address) as client:
        for execution in slow:
            _, events = await finish(client, execution)
            assert count(events, "activity_task_scheduled") == 3, kinds(events)
            assert count(events, "activity_task_completed") == 3, kinds(events)
        _, events = await finish(client, fan_out)
        assert count(events, "activity_task_completed") == 14, kinds(events)
        _, events = await finish(client, collector)
        assert count(events, "workflow_execution_signaled") == 2, kinds(events)
    server.stop()
