"""Workflows, activities and helpers of the issue-4 e2e proof (timers, retries, children,
continue-as-new, cron, queries, sticky execution, reset, restart survival).

They live on a registry of their own (`registry`), so these tests never depend on what
the shared `workflows.registry` holds; the history reading and checking helpers
(`get_history`, `finish`, `check_history`, ...) are the shared ones from workflows.py.
Every workflow type is prefixed "I4" so histories read unambiguously in failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from cadence import activity, workflow
from cadence.api.v1 import decision_pb2, history_pb2, tasklist_pb2
from cadence.api.v1 import service_worker_pb2 as W
from cadence.api.v1.common_pb2 import Payload, WorkflowExecution
from cadence.api.v1.service_workflow_pb2 import TerminateWorkflowExecutionRequest
from cadence.api.v1.tasklist_pb2 import TaskList
from cadence.client import Client
from cadence.context import ContextVarPropagator
from cadence.worker import Registry, Worker
from workflows import Env, get_history, kind, kinds

registry = Registry()

ACTIVITY_TIMEOUT = timedelta(seconds=10)
CHILD_TIMEOUT = timedelta(seconds=60)

#: Every attempt an activity of these tests ran, per workflow id: (attempt, the heartbeat
#: details it was handed, wall time it began). The worker runs in the test process, so the
#: test reads this directly: it is what the activity saw in activity.info() /
#: heartbeat_details().
ATTEMPTS: dict[str, list[tuple[int, list[Any], float]]] = defaultdict(list)

#: Context carried in headers across continue-as-new (the client's context_propagation
#: example does the same with its own ContextVar).
TENANT: ContextVar[str] = ContextVar("i4_tenant")
tenant_propagator = ContextVarPropagator(TENANT, "i4-tenant", str.encode, bytes.decode)


class FlakyError(Exception):
    """An activity failure worth retrying."""


class FatalError(Exception):
    """An activity failure listed in non_retryable_error_reasons."""


class WorkflowBoom(Exception):
    """A workflow failure (its reason is this class name)."""


# --- activities ----------------------------------------------------------------------


@registry.activity(name="i4_flaky")
async def flaky(fail_attempts: int, fatal: bool) -> int:
    """Heartbeats its attempt number, then fails while attempt < fail_attempts (with
    FatalError if `fatal`); returns the attempt that succeeded."""
    info = activity.info()
    ATTEMPTS[info.workflow_id].append((info.attempt, activity.heartbeat_details(), time.time()))
    activity.heartbeat(f"beat of attempt {info.attempt}")
    if info.attempt < fail_attempts:
        if fatal:
            raise FatalError(f"attempt {info.attempt} is fatal")
        raise FlakyError(f"attempt {info.attempt} fails")
    return info.attempt


@registry.activity(name="i4_add")
async def add(x: int, y: int) -> int:
    return x + y


@registry.activity(name="i4_tenant")
async def tenant_of_activity() -> str:
    return TENANT.get("no tenant")


def act(name: str, result_type: type, *args: Any, **options: Any) -> Any:
    options.setdefault("start_to_close_timeout", ACTIVITY_TIMEOUT)
    return workflow.execute_activity(name, result_type, *args, **options)


def retry_policy(seconds: float, maximum_attempts: int, **more: Any) -> dict[str, Any]:
    return {"initial_interval": timedelta(seconds=seconds), "maximum_attempts": maximum_attempts, **more}


# --- workflows (and, next to them, the activities only one of them uses) -------------


@registry.workflow(name="I4Echo")
class Echo:
    @workflow.run
    async def run(self, value: str) -> str:
        return value


@registry.workflow(name="I4Fail")
class Fail:
    @workflow.run
    async def run(self, message: str) -> str:
        raise WorkflowBoom(message)


@registry.workflow(name="I4Timer")
class Timer:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return f"slept {seconds}"


@registry.workflow(name="I4CancelTimer")
class CancelTimer:
    """A long timer cancelled when signalled "cancel"; a short one still fires after."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self, short_seconds: float) -> str:
        timer = asyncio.ensure_future(workflow.sleep(timedelta(seconds=600)))
        await workflow.wait_condition(lambda: self.cancel)
        timer.cancel()
        try:
            await timer
            outcome = "long timer fired"
        except asyncio.CancelledError:
            outcome = "long timer cancelled"
        await workflow.sleep(timedelta(seconds=short_seconds))
        return f"{outcome}, short timer fired"


@registry.workflow(name="I4RetryActivity")
class RetryActivity:
    @workflow.run
    async def run(
        self, fail_attempts: int, fatal: bool, policy_seconds: dict[str, float], attempts: int
    ) -> int:
        policy: dict[str, Any] = {
            "initial_interval": timedelta(seconds=policy_seconds["initial"]),
            "backoff_coefficient": policy_seconds.get("coefficient", 1.0),
            "maximum_attempts": attempts,
            "non_retryable_error_reasons": ["FatalError"],
        }
        if "maximum" in policy_seconds:
            policy["maximum_interval"] = timedelta(seconds=policy_seconds["maximum"])
        if "expiration" in policy_seconds:
            policy["expiration_interval"] = timedelta(seconds=policy_seconds["expiration"])
        return await act("i4_flaky", int, fail_attempts, fatal, retry_policy=policy)


@registry.workflow(name="I4HeaderCountdown")
class HeaderCountdown:
    """Continues as new `n` times; the last run reports the tenant its header carried and
    the one an activity it scheduled saw."""

    @workflow.run
    async def run(self, n: int) -> str:
        if n > 0:
            workflow.continue_as_new(n - 1)
        seen_by_activity = await act("i4_tenant", str)
        return f"{TENANT.get('no tenant')}/{seen_by_activity}"


@registry.workflow(name="I4Queryable")
class Queryable:
    """Collects "add" signals; closes on "finish" (or fails on "fail")."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False
        self.fail = False

    @workflow.signal(name="add")
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal(name="finish")
    def finish(self, fail: bool) -> None:
        self.done = True
        self.fail = fail

    @workflow.query(name="status")
    def status(self, prefix: str, upper: bool) -> str:
        text = f"{prefix}: {','.join(self.items)} done={self.done}"
        return text.upper() if upper else text

    @workflow.query(name="count")
    def count(self) -> int:
        return len(self.items)

    @workflow.query(name="broken")
    def broken(self) -> str:
        raise RuntimeError("this query handler is broken")

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        if self.fail:
            raise WorkflowBoom("asked to fail")
        return len(self.items)


@registry.workflow(name="I4Parent")
class Parent:
    """Executes an I4Echo child (with a memo) and returns what it said."""

    @workflow.run
    async def run(self, value: str) -> str:
        said = await workflow.execute_child_workflow(
            "I4Echo", str, value, execution_start_to_close_timeout=CHILD_TIMEOUT, memo={"from": "parent"}
        )
        return f"child said {said}"


@registry.workflow(name="I4ParentOfFailure")
class ParentOfFailure:
    """Executes an I4Fail child and reports the error the client raised for it."""

    @workflow.run
    async def run(self, message: str) -> str:
        try:
            await workflow.execute_child_workflow(
                "I4Fail", str, message, execution_start_to_close_timeout=CHILD_TIMEOUT
            )
        except Exception as error:  # the client's child-failure error
            return f"child failed: {type(error).__name__}"
        return "child did not fail"


@registry.workflow(name="I4Collector")
class Collector:
    """Collects "add" signals until `count` arrived; returns them in arrival order."""

    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.signal(name="add")
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.query(name="items")
    def get_items(self) -> list[str]:
        return self.items

    @workflow.run
    async def run(self, count: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.items) >= count)
        return self.items


@registry.workflow(name="I4SignalChild")
class SignalChild:
    """Starts an I4Collector child, signals it twice, returns what it collected."""

    @workflow.run
    async def run(self, values: list[str]) -> list[str]:
        child = await workflow.start_child_workflow(
            "I4Collector", list[str], len(values), execution_start_to_close_timeout=CHILD_TIMEOUT
        )
        for value in values:
            await child.signal("add", value)
        return await child


@registry.workflow(name="I4SignalExternal")
class SignalExternal:
    @workflow.run
    async def run(self, target_workflow_id: str, value: str) -> str:
        try:
            await workflow.signal_external_workflow(target_workflow_id, "add", value)
        except Exception as error:  # the client's error for SignalExternalWorkflowExecutionFailed
            return f"not sent: {type(error).__name__}"
        return "sent"


@registry.workflow(name="I4ChildConflict")
class ChildConflict:
    """Starts an I4Collector child under an id that is already running."""

    @workflow.run
    async def run(self, workflow_id: str) -> str:
        try:
            await workflow.start_child_workflow(
                "I4Collector",
                list[str],
                1,
                workflow_id=workflow_id,
                execution_start_to_close_timeout=CHILD_TIMEOUT,
            )
        except Exception as error:  # the client's error for StartChildWorkflowExecutionFailed
            return f"not started: {type(error).__name__}"
        return "started"


@registry.workflow(name="I4CloseParent")
class CloseParent:
    """Starts one I4Collector child per (workflow id, parent close policy), waits until all
    are started, and completes: the server applies each child's policy then."""

    @workflow.run
    async def run(self, children: list[tuple[str, int]]) -> str:
        for workflow_id, policy in children:
            await workflow.start_child_workflow(
                "I4Collector",
                list[str],
                1,
                workflow_id=workflow_id,
                parent_close_policy=policy,
                execution_start_to_close_timeout=CHILD_TIMEOUT,
            )
        return "parent done"


@registry.workflow(name="I4Steps")
class Steps:
    """add(0,1), waits for "go", add(x,10), waits for "finish"; query "state" shows the
    results so far. Reset tests fork it between the steps."""

    def __init__(self) -> None:
        self.state: list[int] = []
        self.go = False
        self.finish = False

    @workflow.signal(name="go")
    def on_go(self) -> None:
        self.go = True

    @workflow.signal(name="finish")
    def on_finish(self) -> None:
        self.finish = True

    @workflow.query(name="state")
    def get_state(self) -> list[int]:
        return self.state

    @workflow.run
    async def run(self) -> list[int]:
        self.state.append(await act("i4_add", int, 0, 1))
        await workflow.wait_condition(lambda: self.go)
        self.state.append(await act("i4_add", int, self.state[-1], 10))
        await workflow.wait_condition(lambda: self.finish)
        return self.state


@registry.workflow(name="I4Timers")
class Timers:
    """Sleeps on several timers at once; returns their durations in firing order."""

    @workflow.run
    async def run(self, durations: list[float]) -> list[float]:
        fired: list[float] = []

        async def one(seconds: float) -> None:
            await workflow.sleep(timedelta(seconds=seconds))
            fired.append(seconds)

        await asyncio.gather(*(one(d) for d in durations))
        return fired


@registry.activity(name="i4_slow_first")
async def slow_first(seconds: float, later: float) -> int:
    """Attempt 0 takes `seconds` (beyond its start-to-close timeout), later attempts
    `later`; each returns its attempt number (attempt 0 too: too late, it must not count)."""
    info = activity.info()
    ATTEMPTS[info.workflow_id].append((info.attempt, [], time.time()))
    await asyncio.sleep(seconds if info.attempt == 0 else later)
    return info.attempt


@registry.workflow(name="I4TimeoutRetry")
class TimeoutRetry:
    @workflow.run
    async def run(self) -> int:
        return await act(
            "i4_slow_first",
            int,
            2.4,  # attempt 0: timed out at 1 s, retried at 2 s, reports its result at 2.4 s ...
            0.8,  # ... while attempt 1 (within its 1 s timeout) runs until 2.8 s
            start_to_close_timeout=timedelta(seconds=1),
            retry_policy=retry_policy(1, 3),
        )


@registry.workflow(name="I4ContinueAs")
class ContinueAs:
    """Continues as a new run of another type, with a new execution timeout."""

    @workflow.run
    async def run(self, target_type: str, value: str, timeout_seconds: int) -> None:
        workflow.continue_as_new(
            value,
            workflow_type=target_type,
            execution_start_to_close_timeout=timedelta(seconds=timeout_seconds),
        )


@registry.workflow(name="I4ChildObserver")
class ChildObserver:
    """Executes an I4Collector child (the given id and execution timeout) and reports how
    it ended: its result, or the name of the client's error for it."""

    @workflow.run
    async def run(self, workflow_id: str, timeout_seconds: int) -> str:
        try:
            items = await workflow.execute_child_workflow(
                "I4Collector",
                list[str],
                1,
                workflow_id=workflow_id,
                execution_start_to_close_timeout=timedelta(seconds=timeout_seconds),
            )
        except Exception as error:
            return type(error).__name__
        return f"collected {items}"


@registry.workflow(name="I4CancelChild")
class CancelChild:
    """Starts an I4Collector child; on signal "cancel" asks it to cancel (the client's
    RequestCancelExternalWorkflowExecution, child_workflow_only) and reports the outcome."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self) -> str:
        child = await workflow.start_child_workflow(
            "I4Collector", list[str], 1, execution_start_to_close_timeout=CHILD_TIMEOUT
        )
        await workflow.wait_condition(lambda: self.cancel)
        child.cancel()
        try:
            await child
        except Exception as error:
            return type(error).__name__
        return "child not cancelled"


@registry.activity(name="i4_sleep")
async def sleep_activity(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@registry.workflow(name="I4SlowStep")
class SlowStep:
    """One slow activity (on `task_list`, if given); "note" signals received meanwhile are
    returned with its result."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.signal(name="note")
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.run
    async def run(self, seconds: float, task_list: str) -> list[str]:
        options = {"task_list": task_list} if task_list else {}
        slept = await act("i4_sleep", float, seconds, **options)
        return [*self.notes, f"slept {slept}"]


#: How many times i4_count ran per key (an activity: workflow replays do not re-run it).
COUNTS: dict[str, int] = defaultdict(int)


@registry.activity(name="i4_count")
async def count_activity(key: str) -> int:
    COUNTS[key] += 1
    return COUNTS[key]


@registry.workflow(name="I4FailOnce")
class FailOnce:
    """Fails its first run (with a retry policy, the server runs it again); then returns."""

    @workflow.run
    async def run(self, value: str) -> str:
        if await act("i4_count", int, workflow.WorkflowContext.get().info().workflow_id) == 1:
            raise WorkflowBoom("first run fails")
        return value


@registry.workflow(name="I4ParentOfRetried")
class ParentOfRetried:
    """Executes an I4FailOnce child with a retry policy of two attempts."""

    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_child_workflow(
            "I4FailOnce",
            str,
            value,
            execution_start_to_close_timeout=CHILD_TIMEOUT,
            retry_policy=retry_policy(1, 2),
        )


@registry.activity(name="i4_stall")
async def stall(seconds: float) -> list[Any]:
    """Attempt 0 heartbeats its progress once, then stalls past its heartbeat timeout;
    the next attempt returns the heartbeat details it was handed."""
    info = activity.info()
    ATTEMPTS[info.workflow_id].append((info.attempt, activity.heartbeat_details(), time.time()))
    if info.attempt == 0:
        activity.heartbeat("progress 7")
        await asyncio.sleep(seconds)
    return list(activity.heartbeat_details())


@registry.workflow(name="I4HeartbeatRetry")
class HeartbeatRetry:
    @workflow.run
    async def run(self) -> list[Any]:
        return await act(
            "i4_stall",
            list,
            3.0,
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=retry_policy(1, 3),
        )


@registry.workflow(name="I4CancelRetrying")
class CancelRetrying:
    """An always-failing activity retried every `seconds`; cancelled on signal "cancel"."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self, seconds: int) -> str:
        task = asyncio.ensure_future(
            act("i4_flaky", int, 100, False, retry_policy=retry_policy(seconds, 100))
        )
        await workflow.wait_condition(lambda: self.cancel)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "activity cancelled"
        return "activity finished"


@registry.workflow(name="I4SignalRun")
class SignalRun:
    """Signals "add" to one given run of a workflow (not whichever run is current)."""

    @workflow.run
    async def run(self, workflow_id: str, run_id: str, value: str) -> str:
        try:
            await workflow.signal_external_workflow(workflow_id, "add", value, run_id=run_id)
        except Exception as error:
            return f"not sent: {type(error).__name__}"
        return "sent"


@registry.workflow(name="I4NotedTimer")
class NotedTimer:
    """Sleeps `seconds`; returns the "note" signals received meanwhile."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.signal(name="note")
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.run
    async def run(self, seconds: float) -> list[str]:
        await workflow.sleep(timedelta(seconds=seconds))
        return self.notes


@registry.workflow(name="I4UpsertThenContinue")
class UpsertThenContinue:
    """First run: upserts CustomKeywordField, then continues as new; second run returns."""

    @workflow.run
    async def run(self, first_run: bool) -> str:
        if first_run:
            workflow.upsert_search_attributes({"CustomKeywordField": "kept"})
            workflow.continue_as_new(False)
        return "second run"


# --- running things ------------------------------------------------------------------

#: Reconnect to a restarted server within a second instead of gRPC's default backoff.
FAST_RECONNECT = {"grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500}


@contextlib.asynccontextmanager
async def running(
    address: str,
    domain: str,
    worker: bool = True,
    propagators: tuple[Any, ...] = (),
    channel_arguments: dict[str, Any] | None = None,
) -> AsyncIterator[Env]:
    """A client, and (unless worker=False) a real Worker of this module's registry polling
    a fresh task list."""
    task_list = f"i4-{uuid.uuid4().hex[:10]}"
    async with Client(
        domain=domain,
        target=address,
        context_propagators=propagators,
        channel_arguments=channel_arguments or {},
    ) as client:
        if not worker:
            yield Env(client, task_list)
            return
        async with Worker(client, task_list, registry):
            yield Env(client, task_list)


def run_of(execution: WorkflowExecution, run_id: str) -> WorkflowExecution:
    return WorkflowExecution(workflow_id=execution.workflow_id, run_id=run_id)


def ts(t: Any) -> float:
    """A protobuf Timestamp/Duration as float seconds."""
    return float(t.seconds + t.nanos / 1e9)


def attrs(event: history_pb2.HistoryEvent) -> Any:
    return getattr(event, event.WhichOneof("attributes"))


def first(events: list[history_pb2.HistoryEvent], k: str) -> history_pb2.HistoryEvent:
    for event in events:
        if kind(event) == k:
            return event
    raise AssertionError(f"no {k} in {kinds(events)}")


def count(events: list[history_pb2.HistoryEvent], k: str) -> int:
    return sum(1 for e in events if kind(e) == k)


def started_attrs(events: list[history_pb2.HistoryEvent]) -> Any:
    return events[0].workflow_execution_started_event_attributes


def next_run(close: history_pb2.HistoryEvent, execution: WorkflowExecution) -> WorkflowExecution:
    assert kind(close) == "workflow_execution_continued_as_new", kind(close)
    return run_of(execution, close.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def terminate(client: Client, execution: WorkflowExecution, reason: str = "test over") -> None:
    request = TerminateWorkflowExecutionRequest(
        domain=client.domain, workflow_execution=execution, reason=reason
    )
    await client.workflow_stub.TerminateWorkflowExecution(request, timeout=30)


async def wait_until(
    client: Client, execution: WorkflowExecution, done: Any, what: str, within: float = 20
) -> list[history_pb2.HistoryEvent]:
    """Poll the (checked) history until done(events) holds; return that history."""
    deadline = time.monotonic() + within
    while True:
        events = await get_history(client, execution)
        if done(events):
            return events
        assert time.monotonic() < deadline, f"no {what} within {within}s: {kinds(events)}"
        await asyncio.sleep(0.05)


async def wait_settled(
    client: Client, execution: WorkflowExecution, signals: int = 0, completed: int = 1
) -> list[history_pb2.HistoryEvent]:
    """Wait until `signals` signals arrived and a decision completed after the last one,
    with at least `completed` completed decisions: the workflow is idle, waiting."""

    def settled(events: list[history_pb2.HistoryEvent]) -> bool:
        ks = kinds(events)
        return (
            ks.count("workflow_execution_signaled") >= signals
            and ks.count("decision_task_completed") >= completed
            and ks[-1] == "decision_task_completed"
        )

    return await wait_until(client, execution, settled, f"idle after {signals} signals")


# --- raw decision tasks, the way the Go client drives them ---------------------------

STICKY = tasklist_pb2.TASK_LIST_KIND_STICKY
GO_IDENTITY = "go-like-worker"


def complete_decision(result_json: bytes = b'"done"') -> decision_pb2.Decision:
    return decision_pb2.Decision(
        complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
            result=Payload(data=result_json)
        )
    )


def timer_decision(timer_id: str, seconds: int) -> decision_pb2.Decision:
    timer = decision_pb2.StartTimerDecisionAttributes(timer_id=timer_id)
    timer.start_to_fire_timeout.FromTimedelta(timedelta(seconds=seconds))
    return decision_pb2.Decision(start_timer_decision_attributes=timer)


async def poll_decision(
    client: Client, task_list: TaskList, seconds: float = 5
) -> W.PollForDecisionTaskResponse:
    request = W.PollForDecisionTaskRequest(domain=client.domain, task_list=task_list, identity=GO_IDENTITY)
    return await client.worker_stub.PollForDecisionTask(request, timeout=seconds)


async def poll_until_task(
    client: Client, task_list: TaskList, within: float = 15
) -> W.PollForDecisionTaskResponse:
    """Poll until a task arrives (an empty poll reply is a long poll that timed out)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        task = await poll_decision(client, task_list, max(1.0, min(5.0, deadline - time.monotonic())))
        if task.task_token:
            return task
    raise AssertionError(f"no decision task on {task_list.name} within {within}s")


async def respond(
    client: Client,
    task: W.PollForDecisionTaskResponse,
    decisions: list[decision_pb2.Decision] = (),  # type: ignore[assignment]
    sticky: TaskList | None = None,
    schedule_to_start: float = 5,
) -> None:
    """RespondDecisionTaskCompleted as the Go client sends it: with sticky attributes
    naming its per-worker STICKY list when it caches the workflow."""
    request = W.RespondDecisionTaskCompletedRequest(
        task_token=task.task_token, identity=GO_IDENTITY, decisions=list(decisions)
    )
    if sticky is not None:
        request.sticky_attributes.worker_task_list.CopyFrom(sticky)
        request.sticky_attributes.schedule_to_start_timeout.FromTimedelta(
            timedelta(seconds=schedule_to_start)
        )
    await client.worker_stub.RespondDecisionTaskCompleted(request, timeout=10)
