"""Workflows and activities of the official-client e2e tests, and the helpers that read
their results and check every history against the client contract (§4a/§4b).

Everything is registered on one `registry`; each test runs a real
`cadence.worker.Worker` with it on a task list of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cadence import activity, workflow
from cadence.api.v1 import history_pb2, workflow_pb2
from cadence.api.v1.common_pb2 import WorkflowExecution, WorkflowType
from cadence.api.v1.service_domain_pb2 import RegisterDomainRequest
from cadence.api.v1.service_workflow_pb2 import (
    GetWorkflowExecutionHistoryRequest,
    StartWorkflowExecutionRequest,
)
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.client import Client
from cadence.context import ContextVarPropagator
from cadence.worker import Registry, Worker

registry = Registry()

ACTIVITY_TIMEOUT = timedelta(seconds=10)


# --- activities ----------------------------------------------------------------------


class ActivityBoom(Exception):
    pass


class WorkflowBoom(Exception):
    pass


@registry.activity(name="add_one")
async def add_one(x: int) -> int:
    return x + 1


@registry.activity(name="echo_activity")
async def echo_activity(value: str) -> str:
    return value


@registry.activity(name="failing_activity")
async def failing_activity(message: str) -> str:
    raise ActivityBoom(message)


@registry.activity(name="heartbeating_activity")
async def heartbeating_activity(steps: int, interval: float) -> int:
    """Runs steps * interval seconds, heartbeating every step."""
    for i in range(steps):
        activity.heartbeat(i)
        await asyncio.sleep(interval)
    return steps


@registry.activity(name="silent_activity")
async def silent_activity(seconds: float) -> str:
    """Never heartbeats: with a short heartbeat timeout it must time out."""
    await asyncio.sleep(seconds)
    return "finished without heartbeats"


@registry.activity(name="cancellable_activity")
async def cancellable_activity(seconds: float) -> str:
    """Heartbeats until the server reports cancel_requested; the client then cancels this
    coroutine and answers RespondActivityTaskCanceled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        activity.heartbeat("waiting")
        await asyncio.sleep(0.2)
    return "not cancelled"


def _act(name: str, result_type: type, *args: Any, **options: Any) -> Any:
    options.setdefault("start_to_close_timeout", ACTIVITY_TIMEOUT)
    return workflow.execute_activity(name, result_type, *args, **options)


# --- workflows -----------------------------------------------------------------------


@registry.workflow(name="EchoWorkflow")
class EchoWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return value


@registry.workflow(name="FailingWorkflow")
class FailingWorkflow:
    @workflow.run
    async def run(self, message: str) -> str:
        raise WorkflowBoom(message)


@registry.workflow(name="OneActivityWorkflow")
class OneActivityWorkflow:
    @workflow.run
    async def run(self, x: int) -> int:
        return await _act("add_one", int, x)


@registry.workflow(name="SequentialActivitiesWorkflow")
class SequentialActivitiesWorkflow:
    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(3):
            x = await _act("add_one", int, x)
        return x


@registry.workflow(name="ParallelActivitiesWorkflow")
class ParallelActivitiesWorkflow:
    @workflow.run
    async def run(self, x: int) -> int:
        a, b = await asyncio.gather(_act("add_one", int, x), _act("add_one", int, x + 10))
        return a + b


@registry.workflow(name="FanOutWorkflow")
class FanOutWorkflow:
    """One activity, then `width` in parallel whose results are summed."""

    @workflow.run
    async def run(self, width: int) -> int:
        first = await _act("add_one", int, 0)
        results = await asyncio.gather(*(_act("add_one", int, first + i) for i in range(width)))
        return sum(results)


@registry.workflow(name="FailingActivityWorkflow")
class FailingActivityWorkflow:
    @workflow.run
    async def run(self, message: str) -> str:
        return await _act("failing_activity", str, message)


@registry.workflow(name="HeartbeatWorkflow")
class HeartbeatWorkflow:
    @workflow.run
    async def run(self, steps: int, interval: float, heartbeat_seconds: int) -> int:
        return await _act(
            "heartbeating_activity",
            int,
            steps,
            interval,
            heartbeat_timeout=timedelta(seconds=heartbeat_seconds),
        )


@registry.workflow(name="MissingHeartbeatWorkflow")
class MissingHeartbeatWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await _act("silent_activity", str, seconds, heartbeat_timeout=timedelta(seconds=1))


@registry.workflow(name="CancelActivityWorkflow")
class CancelActivityWorkflow:
    """Starts a long activity, cancels it when signalled "cancel", reports the outcome."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self, seconds: float) -> str:
        task = asyncio.ensure_future(_act("cancellable_activity", str, seconds))
        await workflow.wait_condition(lambda: self.cancel or task.done())
        if task.done():
            return "activity finished: " + task.result()
        task.cancel()
        try:
            return "activity finished: " + await task
        except asyncio.CancelledError:
            return "activity cancelled"


@registry.workflow(name="SignalCollectorWorkflow")
class SignalCollectorWorkflow:
    """Collects "add" signals until `count` arrived; returns them in arrival order."""

    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.signal(name="add")
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.run
    async def run(self, count: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.items) >= count)
        return self.items


@registry.workflow(name="BlockingWorkflow")
class BlockingWorkflow:
    """Waits for a "finish" signal and returns its value. With ignore_cancel it survives
    a cancel request (and then still waits), so a second request can be observed."""

    def __init__(self) -> None:
        self.value: str | None = None

    @workflow.signal(name="finish")
    def finish(self, value: str) -> None:
        self.value = value

    @workflow.run
    async def run(self, ignore_cancel: bool) -> str:
        try:
            await workflow.wait_condition(lambda: self.value is not None)
        except asyncio.CancelledError:
            if not ignore_cancel:
                raise
            await workflow.wait_condition(lambda: self.value is not None)
            return f"cancel ignored, finished with {self.value}"
        return f"finished with {self.value}"


@registry.workflow(name="SlowStepsWorkflow")
class SlowStepsWorkflow:
    """Crash recovery: `steps` sequential heartbeating activities of ~`seconds` each."""

    @workflow.run
    async def run(self, steps: int, seconds: float) -> int:
        total = 0
        for _ in range(steps):
            # Heartbeat timeout above a server restart (a few seconds in pure-Python mode on
            # a loaded machine): the crash must not time a running activity out. The retry
            # policy covers the one window no server can close: an activity recorded as
            # started whose poll reply died with the process (Cadence's answer is the same).
            total += await _act(
                "heartbeating_activity",
                int,
                2,
                seconds / 2,
                heartbeat_timeout=timedelta(seconds=8),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy={"initial_interval": timedelta(seconds=1), "maximum_attempts": 3},
            )
        return total


@registry.workflow(name="ActivityOptionsWorkflow")
class ActivityOptionsWorkflow:
    """Runs one activity with the given timeouts (seconds) and, optionally, task list."""

    @workflow.run
    async def run(self, name: str, args: list[Any], seconds: dict[str, float], task_list: str) -> Any:
        options: dict[str, Any] = {k: timedelta(seconds=v) for k, v in seconds.items()}
        if task_list:
            options["task_list"] = task_list
        return await workflow.execute_activity(name, object, *args, **options)


# --- issue 4: queries, timers, children, continue-as-new, retries -------------------


@registry.activity(name="flaky_activity")
async def flaky_activity(fail_attempts: int) -> int:
    """Fails its first `fail_attempts` attempts; returns the attempt that succeeded."""
    attempt = activity.info().attempt
    if attempt < fail_attempts:
        raise ActivityBoom(f"attempt {attempt} fails")
    return attempt


@registry.workflow(name="QueryableWorkflow")
class QueryableWorkflow:
    """Answers the "status" query with what it has seen; closes on signal "finish"."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.signal(name="add")
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.done = True

    @workflow.query(name="broken")
    def broken(self) -> str:
        raise RuntimeError("this handler is broken")

    @workflow.query(name="status")
    def status(self, prefix: str) -> str:
        return f"{prefix}: {','.join(self.items)} done={self.done}"

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return len(self.items)


@registry.workflow(name="TimerWorkflow")
class TimerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return "woke up"


@registry.workflow(name="ParentWorkflow")
class ParentWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        child = await workflow.execute_child_workflow(
            "EchoWorkflow", str, value, execution_start_to_close_timeout=timedelta(seconds=30)
        )
        return f"child said {child}"


@registry.workflow(name="CountdownWorkflow")
class CountdownWorkflow:
    """Continues as new `n` times, then returns."""

    @workflow.run
    async def run(self, n: int) -> str:
        if n > 0:
            workflow.continue_as_new(n - 1)
        return "liftoff"


@registry.workflow(name="RetryingActivityWorkflow")
class RetryingActivityWorkflow:
    @workflow.run
    async def run(self, fail_attempts: int, maximum_attempts: int) -> int:
        return await _act(
            "flaky_activity",
            int,
            fail_attempts,
            retry_policy={
                "initial_interval": timedelta(seconds=1),
                "backoff_coefficient": 1.0,
                "maximum_attempts": maximum_attempts,
            },
        )


#: Context carried in headers: set by the starter, seen by workflows and activities.
TENANT: ContextVar[str] = ContextVar("tenant")
tenant_propagator = ContextVarPropagator(TENANT, "tenant", str.encode, bytes.decode)


@registry.activity(name="tenant_activity")
async def tenant_activity() -> str:
    return TENANT.get("no tenant")


@registry.workflow(name="HeaderCountdownWorkflow")
class HeaderCountdownWorkflow:
    """Continues as new `n` times; the last run reports the tenant its header carried,
    and the one an activity scheduled from it saw."""

    @workflow.run
    async def run(self, n: int) -> str:
        if n > 0:
            workflow.continue_as_new(n - 1)
        from_activity = await _act("tenant_activity", str)
        return f"{TENANT.get('no tenant')}/{from_activity}"


@registry.workflow(name="CancelTimerWorkflow")
class CancelTimerWorkflow:
    """Starts a long timer and cancels it when signalled "cancel"."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self) -> str:
        timer = asyncio.ensure_future(workflow.sleep(timedelta(seconds=60)))
        await workflow.wait_condition(lambda: self.cancel)
        timer.cancel()
        try:
            await timer
        except asyncio.CancelledError:
            return "timer cancelled"
        return "timer fired"


@registry.workflow(name="SignalChildWorkflow")
class SignalChildWorkflow:
    """Starts a SignalCollectorWorkflow child, signals it, returns what it collected."""

    @workflow.run
    async def run(self, value: str) -> list[str]:
        child = await workflow.start_child_workflow(
            "SignalCollectorWorkflow", list[str], 1, execution_start_to_close_timeout=timedelta(seconds=30)
        )
        await child.signal("add", value)
        return await child


@registry.workflow(name="SignalExternalWorkflow")
class SignalExternalWorkflow:
    @workflow.run
    async def run(self, target_workflow_id: str, value: str) -> str:
        await workflow.signal_external_workflow(target_workflow_id, "add", value)
        return "sent"


@registry.workflow(name="NonRetryableActivityWorkflow")
class NonRetryableActivityWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await _act(
            "failing_activity",
            str,
            "not worth retrying",
            retry_policy={
                "initial_interval": timedelta(seconds=1),
                "maximum_attempts": 5,
                "non_retryable_error_reasons": ["ActivityBoom"],
            },
        )


# --- running things ------------------------------------------------------------------


def register_domain(address: str, name: str) -> None:
    """Register `name` through the official client's DomainAPI stub (sync, for fixtures)."""

    async def go() -> None:
        async with Client(domain=name, target=address) as client:
            request = RegisterDomainRequest(name=name)
            request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
            await client.domain_stub.RegisterDomain(request, timeout=30)

    asyncio.run(go())


@dataclass
class Env:
    client: Client
    task_list: str

    async def start(self, wf: str, *args: Any, run_seconds: float = 60, **options: Any) -> WorkflowExecution:
        options.setdefault("task_list", self.task_list)
        options.setdefault("execution_start_to_close_timeout", timedelta(seconds=run_seconds))
        options.setdefault("task_start_to_close_timeout", timedelta(seconds=5))
        return await self.client.start_workflow(wf, *args, **options)


def start_request(
    client: Client, workflow_type: str, *args: Any, task_list: str
) -> StartWorkflowExecutionRequest:
    """The StartWorkflowExecutionRequest the client's start_workflow sends (client.py,
    defaults of cadence-python-client 0.4.1), for tests that call the raw stub."""
    request = StartWorkflowExecutionRequest(
        domain=client.domain,
        workflow_id=str(uuid.uuid4()),
        workflow_type=WorkflowType(name=workflow_type),
        task_list=TaskList(name=task_list),
        identity=client.identity,
        request_id=str(uuid.uuid4()),
        workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
        input=client.data_converter.to_data(list(args)),
    )
    request.execution_start_to_close_timeout.FromTimedelta(timedelta(seconds=30))
    request.task_start_to_close_timeout.FromTimedelta(timedelta(seconds=5))
    return request


@contextlib.asynccontextmanager
async def running(
    address: str,
    domain: str,
    worker: bool = True,
    channel_arguments: dict[str, Any] | None = None,
    context_propagators: tuple[Any, ...] = (),
) -> AsyncIterator[Env]:
    """A client, and (unless worker=False) a real Worker polling a fresh task list."""
    task_list = f"tl-{uuid.uuid4().hex[:10]}"
    async with Client(
        domain=domain,
        target=address,
        channel_arguments=channel_arguments or {},
        context_propagators=context_propagators,
    ) as client:
        if not worker:
            yield Env(client, task_list)
            return
        async with Worker(client, task_list, registry):
            yield Env(client, task_list)


# --- reading results -----------------------------------------------------------------

CLOSE_ATTRS = {
    "workflow_execution_completed_event_attributes",
    "workflow_execution_failed_event_attributes",
    "workflow_execution_timed_out_event_attributes",
    "workflow_execution_canceled_event_attributes",
    "workflow_execution_terminated_event_attributes",
    "workflow_execution_continued_as_new_event_attributes",
}


def kind(event: history_pb2.HistoryEvent) -> str:
    """The event's type as its attributes field name minus the suffix, e.g.
    'activity_task_scheduled'."""
    attr = event.WhichOneof("attributes") or ""
    return attr.removesuffix("_event_attributes")


def kinds(events: list[history_pb2.HistoryEvent]) -> list[str]:
    return [kind(e) for e in events]


async def wait_close(
    client: Client, execution: WorkflowExecution, within: float = 30
) -> history_pb2.HistoryEvent:
    """The run's close event, read as the client contract says callers do it."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"workflow {execution.workflow_id} did not close within {within}s"
        request = GetWorkflowExecutionHistoryRequest(
            domain=client.domain,
            workflow_execution=execution,
            wait_for_new_event=True,
            history_event_filter_type=history_pb2.EVENT_FILTER_TYPE_CLOSE_EVENT,
            skip_archival=True,
        )
        response = await client.workflow_stub.GetWorkflowExecutionHistory(request, timeout=min(left, 60))
        events = response.history.events
        if events:
            last = events[-1]
            assert last.WhichOneof("attributes") in CLOSE_ATTRS, f"CLOSE_EVENT filter returned {kind(last)}"
            return last


async def get_history(
    client: Client, execution: WorkflowExecution, page_size: int = 0, check: bool = True
) -> list[history_pb2.HistoryEvent]:
    """All events of the run (following next_page_token), checked against the contract."""
    events: list[history_pb2.HistoryEvent] = []
    token = b""
    while True:
        request = GetWorkflowExecutionHistoryRequest(
            domain=client.domain,
            workflow_execution=execution,
            page_size=page_size,
            next_page_token=token,
            skip_archival=True,
        )
        response = await client.workflow_stub.GetWorkflowExecutionHistory(request, timeout=30)
        events.extend(response.history.events)
        token = response.next_page_token
        if not token:
            break
    if check:
        check_history(events)
    return events


async def finish(
    client: Client, execution: WorkflowExecution, within: float = 30
) -> tuple[history_pb2.HistoryEvent, list[history_pb2.HistoryEvent]]:
    """Wait for the close event; return it and the whole (checked) history."""
    close = await wait_close(client, execution, within)
    events = await get_history(client, execution)
    assert events[-1] == close, f"close event {kind(close)} is not the last of {kinds(events)}"
    return close, events


async def last_run(client: Client, execution: WorkflowExecution, within: float = 30) -> WorkflowExecution:
    """Follow a chain of continued-as-new runs from `execution` to the run that closed
    for good. (An empty run id would resolve to whichever run is current at each call.)"""
    while True:
        close = await wait_close(client, execution, within)
        if kind(close) != "workflow_execution_continued_as_new":
            return execution
        new_run = close.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        execution = WorkflowExecution(workflow_id=execution.workflow_id, run_id=new_run)


async def wait_for_event(client: Client, execution: WorkflowExecution, k: str, within: float = 15) -> None:
    """Poll the run's history until an event of kind `k` shows up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if k in kinds(await get_history(client, execution)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {k} within {within}s: {kinds(await get_history(client, execution))}")


async def result(
    client: Client, execution: WorkflowExecution, result_type: type = object, within: float = 30
) -> Any:
    close, events = await finish(client, execution, within)
    assert kind(close) == "workflow_execution_completed", (
        f"expected completion, got {kind(close)}: {close}\nhistory: {kinds(events)}"
    )
    return client.data_converter.from_data(
        close.workflow_execution_completed_event_attributes.result, [result_type]
    )[0]


# --- the history layout rules (client-contract §4a, §4b) ------------------------------

#: Events a decision produces: they must follow DecisionTaskCompleted contiguously.
DECISION_OUTPUTS = {
    "activity_task_scheduled",
    "activity_task_cancel_requested",
    "request_cancel_activity_task_failed",
    "timer_started",
    "timer_canceled",
    "cancel_timer_failed",
    "start_child_workflow_execution_initiated",
    "request_cancel_external_workflow_execution_initiated",
    "signal_external_workflow_execution_initiated",
    "marker_recorded",
    "upsert_workflow_search_attributes",
    "workflow_execution_completed",
    "workflow_execution_failed",
    "workflow_execution_canceled",
    "workflow_execution_continued_as_new",
}
DECISION_CLOSES = {"decision_task_completed", "decision_task_failed", "decision_task_timed_out"}
ACTIVITY_CLOSES = {
    "activity_task_completed",
    "activity_task_failed",
    "activity_task_timed_out",
    "activity_task_canceled",
}
CLOSES = {a.removesuffix("_event_attributes") for a in CLOSE_ATTRS}

#: Event times must be real: not zero, not from another day, not in the future.
_TIME_SLACK_SECONDS = 3600


def _attrs(event: history_pb2.HistoryEvent) -> Any:
    return getattr(event, event.WhichOneof("attributes"))


def check_history(events: list[history_pb2.HistoryEvent]) -> None:
    """Assert every history layout rule a replaying worker relies on."""
    where = lambda i: f"event {i + 1} ({kind(events[i])}) in {kinds(events)}"  # noqa: E731
    assert events, "empty history"
    assert kind(events[0]) == "workflow_execution_started", where(0)
    now = time.time()
    pending_decision = 0  # scheduled event id of the decision in flight
    decision_started = 0
    last_completed = 0  # id of the latest DecisionTaskCompleted whose outputs may follow
    activities: dict[int, str] = {}  # scheduled event id -> activity id
    activity_ids: set[str] = set()
    activity_started: dict[int, int] = {}
    activity_closed: set[int] = set()
    for i, event in enumerate(events):
        k = kind(event)
        assert event.event_id == i + 1, f"event ids not dense: {where(i)} has id {event.event_id}"
        t = event.event_time.seconds + event.event_time.nanos / 1e9
        assert now - _TIME_SLACK_SECONDS < t < now + 60, f"unreal event_time {t}: {where(i)}"
        if i > 0:
            assert kind(events[i - 1]) not in CLOSES, f"event after the close event: {where(i)}"
        a = _attrs(event)

        # Decision outputs sit contiguously right after DecisionTaskCompleted. A run closed
        # by its timeout with a retry policy also ends ContinuedAsNew, but that close comes from
        # the timer, not a decision: it names no DecisionTaskCompleted (Go: EmptyEventID).
        timer_driven_close = (
            k == "workflow_execution_continued_as_new"
            and a.decision_task_completed_event_id == 0
            and a.initiator != workflow_pb2.CONTINUE_AS_NEW_INITIATOR_DECIDER
        )
        if k in DECISION_OUTPUTS and not timer_driven_close:
            prev = kind(events[i - 1])
            assert prev == "decision_task_completed" or prev in DECISION_OUTPUTS, (
                f"stray decision output: {where(i)}"
            )
            assert a.decision_task_completed_event_id == last_completed, f"wrong completed id: {where(i)}"

        # Decisions: at most one in flight; Started is followed by its close or is last.
        if k == "decision_task_scheduled":
            assert not pending_decision, f"second decision scheduled while one is in flight: {where(i)}"
            pending_decision = event.event_id
        elif k == "decision_task_started":
            assert a.scheduled_event_id == pending_decision and pending_decision, (
                f"bad scheduled id: {where(i)}"
            )
            decision_started = event.event_id
            if i + 1 < len(events):
                nxt = events[i + 1]
                assert kind(nxt) in DECISION_CLOSES, (
                    f"DecisionTaskStarted followed by {kind(nxt)}: {where(i)}"
                )
                assert _attrs(nxt).started_event_id == event.event_id, f"bad started id: {where(i + 1)}"
        elif k in DECISION_CLOSES:
            assert a.scheduled_event_id == pending_decision, f"bad scheduled id: {where(i)}"
            if k != "decision_task_timed_out" or a.started_event_id:
                assert a.started_event_id == decision_started, f"bad started id: {where(i)}"
            pending_decision = decision_started = 0
            if k == "decision_task_completed":
                last_completed = event.event_id

        # Activities are routed by scheduled_event_id; one start and one outcome each.
        elif k == "activity_task_scheduled":
            assert a.activity_id not in activity_ids, f"duplicate activity id {a.activity_id}: {where(i)}"
            assert a.activity_type.name and a.task_list.name, f"scheduled event not copied: {where(i)}"
            activity_ids.add(a.activity_id)
            activities[event.event_id] = a.activity_id
        elif k == "activity_task_started":
            assert a.scheduled_event_id in activities, f"unknown scheduled id: {where(i)}"
            assert a.scheduled_event_id not in activity_started, f"activity started twice: {where(i)}"
            activity_started[a.scheduled_event_id] = event.event_id
        elif k in ACTIVITY_CLOSES:
            assert a.scheduled_event_id in activities, f"unknown scheduled id: {where(i)}"
            assert a.scheduled_event_id not in activity_closed, f"activity closed twice: {where(i)}"
            assert a.started_event_id == activity_started.get(a.scheduled_event_id, 0), (
                f"bad started id: {where(i)}"
            )
            activity_closed.add(a.scheduled_event_id)
        elif k in ("activity_task_cancel_requested", "request_cancel_activity_task_failed"):
            if k == "activity_task_cancel_requested":
                assert a.activity_id in activity_ids, f"cancel of unknown activity: {where(i)}"
