"""The "basic" load of Cadence's bench, over raw gRPC.

W workflows, each running A sequential activities (then, optionally, S signals awaited and
T timers slept) before completing. Deciders and activity workers answer at once, so the
figures are the server's own cost per workflow. Works against this server or Go Cadence:
only the public uber.cadence.api.v1 API is used.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field

import grpc
from cadence.api.v1 import (
    common_pb2,
    decision_pb2,
    service_domain_pb2,
    service_domain_pb2_grpc,
    service_worker_pb2,
    service_worker_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    tasklist_pb2,
)
from google.protobuf import duration_pb2

METADATA = (
    ("rpc-service", "cadence-frontend"),
    ("rpc-caller", "cadence-fast-bench"),
    ("rpc-encoding", "proto"),
)


@dataclass(slots=True)
class BenchConfig:
    address: str = "127.0.0.1:7833"
    domain: str = "bench"
    workflows: int = 1000
    activities: int = 1
    signals: int = 0
    timers: int = 0
    timer_ms: int = 100
    concurrency: int = 50  # concurrent StartWorkflowExecution calls
    inflight: int = 0  # at most this many workflows open at once (0: no limit)
    pollers: int = 16  # decision pollers; as many activity pollers
    progress: bool = True
    timeout: float = 0.0  # give up after this many seconds (0: wait for every workflow)


@dataclass(slots=True)
class BenchResult:
    address: str
    workflows: int
    activities: int
    signals: int
    timers: int
    completed: int
    seconds: float
    workflows_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int = 0
    timed_out: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("latencies_ms")
        return d


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.last = total, enabled and sys.stderr.isatty(), 0.0

    def show(self, done: int, started: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < 0.2):
            return
        self.last = now
        width = 30
        filled = int(width * done / max(1, self.total))
        rate = done / max(1e-9, now - started)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}  {rate:7.1f} wf/s")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _decide(events: list, cfg: BenchConfig, task_list: str) -> decision_pb2.Decision:
    """The next decision of a bench workflow, from its whole history (empty: nothing to do yet).

    Like a real workflow it waits for what it started: an activity whose completion was
    buffered while this decision ran is still pending here, so nothing new is scheduled.
    """
    scheduled = activities_done = timers_started = timers_fired = signals = 0
    for e in events:
        which = e.WhichOneof("attributes")
        if which == "activity_task_scheduled_event_attributes":
            scheduled += 1
        elif which == "activity_task_completed_event_attributes":
            activities_done += 1
        elif which == "workflow_execution_signaled_event_attributes":
            signals += 1
        elif which == "timer_started_event_attributes":
            timers_started += 1
        elif which == "timer_fired_event_attributes":
            timers_fired += 1
    d = decision_pb2.Decision()
    if scheduled > activities_done:
        return d  # the current activity is still running
    if activities_done < cfg.activities:
        a = d.schedule_activity_task_decision_attributes
        a.activity_id = str(activities_done)
        a.activity_type.name = "bench-activity"
        a.task_list.name = task_list
        for t in (a.schedule_to_close_timeout, a.schedule_to_start_timeout, a.start_to_close_timeout, a.heartbeat_timeout):
            t.CopyFrom(_duration(120))
        return d
    if timers_fired < cfg.timers:
        if timers_started == timers_fired:
            t = d.start_timer_decision_attributes
            t.timer_id = f"timer-{timers_started}"
            t.start_to_fire_timeout.CopyFrom(_duration(cfg.timer_ms / 1000))
        return d  # else a timer is pending: an empty decision is never sent (see caller)
    if signals < cfg.signals:
        return d
    d.complete_workflow_execution_decision_attributes.SetInParent()
    return d


async def run(cfg: BenchConfig) -> BenchResult:
    channel = grpc.aio.insecure_channel(cfg.address, options=[("grpc.max_receive_message_length", 32 << 20)])
    workflow_api = service_workflow_pb2_grpc.WorkflowAPIStub(channel)
    worker_api = service_worker_pb2_grpc.WorkerAPIStub(channel)
    domain_api = service_domain_pb2_grpc.DomainAPIStub(channel)
    try:
        await domain_api.RegisterDomain(
            service_domain_pb2.RegisterDomainRequest(
                name=cfg.domain, workflow_execution_retention_period=_duration(86400)
            ),
            metadata=METADATA,
            timeout=30,
        )
    except grpc.aio.AioRpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            await channel.close()
            raise
    task_list = "bench-" + uuid.uuid4().hex[:8]
    tl = tasklist_pb2.TaskList(name=task_list)
    done = asyncio.Event()
    started_at: dict[str, float] = {}
    latencies: list[float] = []
    errors = 0
    open_slots = asyncio.Semaphore(cfg.inflight or cfg.workflows)
    progress = _Progress(cfg.workflows, cfg.progress)
    t0 = time.perf_counter()

    async def decider() -> None:
        nonlocal errors
        while not done.is_set():
            try:
                r = await worker_api.PollForDecisionTask(
                    service_worker_pb2.PollForDecisionTaskRequest(domain=cfg.domain, task_list=tl, identity="bench"),
                    metadata=METADATA,
                    timeout=70,
                )
                if not r.task_token:
                    continue
                d = _decide(list(r.history.events), cfg, task_list)
                decisions = [d] if d.WhichOneof("attributes") else []
                await worker_api.RespondDecisionTaskCompleted(
                    service_worker_pb2.RespondDecisionTaskCompletedRequest(
                        task_token=r.task_token, decisions=decisions, identity="bench"
                    ),
                    metadata=METADATA,
                    timeout=30,
                )
            except grpc.aio.AioRpcError:
                if done.is_set():
                    return
                errors += 1
                continue
            if d.WhichOneof("attributes") == "complete_workflow_execution_decision_attributes":
                wid = r.workflow_execution.workflow_id
                latencies.append(time.perf_counter() - started_at[wid])
                open_slots.release()
                progress.show(len(latencies), t0)
                if len(latencies) >= cfg.workflows:
                    done.set()

    async def activity_worker() -> None:
        nonlocal errors
        while not done.is_set():
            try:
                r = await worker_api.PollForActivityTask(
                    service_worker_pb2.PollForActivityTaskRequest(domain=cfg.domain, task_list=tl, identity="bench"),
                    metadata=METADATA,
                    timeout=70,
                )
                if not r.task_token:
                    continue
                await worker_api.RespondActivityTaskCompleted(
                    service_worker_pb2.RespondActivityTaskCompletedRequest(
                        task_token=r.task_token, identity="bench", result=common_pb2.Payload(data=b'"ok"')
                    ),
                    metadata=METADATA,
                    timeout=30,
                )
            except grpc.aio.AioRpcError:
                if done.is_set():
                    return
                errors += 1

    starters = asyncio.Semaphore(cfg.concurrency)

    async def start(i: int) -> None:
        nonlocal errors
        await open_slots.acquire()
        async with starters:
            wid = f"bench-{task_list}-{i}"
            started_at[wid] = time.perf_counter()
            await workflow_api.StartWorkflowExecution(
                service_workflow_pb2.StartWorkflowExecutionRequest(
                    domain=cfg.domain,
                    workflow_id=wid,
                    workflow_type=common_pb2.WorkflowType(name="bench-workflow"),
                    task_list=tl,
                    execution_start_to_close_timeout=_duration(600),
                    task_start_to_close_timeout=_duration(10),
                    request_id=str(uuid.uuid4()),
                    identity="bench",
                ),
                metadata=METADATA,
                timeout=60,
            )
            for s in range(cfg.signals):
                await workflow_api.SignalWorkflowExecution(
                    service_workflow_pb2.SignalWorkflowExecutionRequest(
                        domain=cfg.domain,
                        workflow_execution=common_pb2.WorkflowExecution(workflow_id=wid),
                        signal_name=f"bench-signal-{s}",
                        request_id=str(uuid.uuid4()),
                        identity="bench",
                    ),
                    metadata=METADATA,
                    timeout=60,
                )

    workers = [asyncio.create_task(decider()) for _ in range(cfg.pollers)]
    workers += [asyncio.create_task(activity_worker()) for _ in range(cfg.pollers if cfg.activities else 0)]
    timed_out = False

    async def everything() -> None:
        await asyncio.gather(*(start(i) for i in range(cfg.workflows)))
        await done.wait()

    try:
        await asyncio.wait_for(everything(), cfg.timeout or None)
    except TimeoutError:
        timed_out = True  # report what completed; the caller sees completed < workflows
    finally:
        elapsed = time.perf_counter() - t0
        done.set()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await channel.close()
    progress.show(len(latencies), t0, force=True)
    ms = sorted(x * 1000 for x in latencies)
    return BenchResult(
        address=cfg.address,
        workflows=cfg.workflows,
        activities=cfg.activities,
        signals=cfg.signals,
        timers=cfg.timers,
        completed=len(ms),
        seconds=round(elapsed, 3),
        workflows_per_second=round(len(ms) / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(ms, 0.50), 1),
        p95_ms=round(percentile(ms, 0.95), 1),
        p99_ms=round(percentile(ms, 0.99), 1),
        max_ms=round(ms[-1], 1) if ms else 0.0,
        errors=errors,
        timed_out=timed_out,
        latencies_ms=ms,
    )
