"""Engine-level test harness: HistoryEngine + MatchingEngine + SQLiteStore on a tmp file, no gRPC.

`Env` plays the frontend's role (poll loop with StaleTaskError handling) and the worker's
(respond calls), so scenarios read like a worker's conversation with the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cadence.api.v1 import (
    common_pb2,
    decision_pb2,
    history_pb2,
    service_domain_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
)
from google.protobuf import duration_pb2

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache, DomainEntry
from cadence_fast.domain.registry import DomainRegistry
from cadence_fast.history.engine import HistoryEngine
from cadence_fast.history.errors import StaleTaskError
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.persistence.records import TaskListType
from cadence_fast.persistence.sqlite.store import SQLiteStore

DOMAIN = "history-tests"


def seconds(s: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(s * 1e9))
    return d


def payload(data: bytes | str) -> common_pb2.Payload:
    return common_pb2.Payload(data=data.encode() if isinstance(data, str) else data)


class Env:
    def __init__(self, path: Path, shards: int = 4) -> None:
        self.path = path
        self.shards = shards
        self.domain: DomainEntry

    async def open(self, register: bool = True) -> Env:
        self.store = SQLiteStore(f"sqlite:///{self.path}")
        await self.store.open(create_schema=True)
        self.domains = DomainCache(self.store)
        await self.domains.start()
        if register:
            registry = DomainRegistry(self.store, self.domains)
            await registry.register(
                service_domain_pb2.RegisterDomainRequest(
                    name=DOMAIN, workflow_execution_retention_period=seconds(86400)
                )
            )
        self.domain = await self.domains.get_by_name(DOMAIN)
        self.matching = MatchingEngine(self.store)
        await self.matching.start()
        config = ServerConfig(shards=self.shards)
        self.history = HistoryEngine(self.store, config, self.domains, self.matching)
        await self.history.start()
        return self

    async def close(self) -> None:
        await self.matching.stop()
        await self.history.stop()
        await self.domains.stop()
        await self.store.close()

    async def reopen(self) -> Env:
        await self.close()
        return await self.open(register=False)

    # --- client side -------------------------------------------------------------------

    def start_request(
        self, workflow_id: str | None = None, **kw: Any
    ) -> service_workflow_pb2.StartWorkflowExecutionRequest:
        req = service_workflow_pb2.StartWorkflowExecutionRequest(
            domain=DOMAIN,
            workflow_id=workflow_id or f"wf-{uuid.uuid4().hex[:8]}",
            workflow_type=common_pb2.WorkflowType(name="TestWorkflow"),
            task_list=tasklist_pb2.TaskList(name=kw.pop("task_list", "tl")),
            input=payload('"in"'),
            execution_start_to_close_timeout=seconds(kw.pop("execution_timeout", 60)),
            task_start_to_close_timeout=seconds(kw.pop("task_timeout", 10)),
            identity="test",
            request_id=kw.pop("request_id", str(uuid.uuid4())),
        )
        for k, v in kw.items():
            f = getattr(req, k)
            if hasattr(f, "CopyFrom"):
                f.CopyFrom(v)
            else:
                setattr(req, k, v)
        return req

    async def start(self, workflow_id: str | None = None, **kw: Any) -> tuple[str, str]:
        req = self.start_request(workflow_id, **kw)
        resp = await self.history.start_workflow(self.domain, req)
        return req.workflow_id, resp.run_id

    async def signal(
        self, workflow_id: str, name: str, data: str, run_id: str = "", request_id: str = ""
    ) -> None:
        await self.history.signal_workflow(
            self.domain,
            service_workflow_pb2.SignalWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                identity="test",
                request_id=request_id or str(uuid.uuid4()),
                signal_name=name,
                signal_input=payload(data),
            ),
        )

    async def history_events(self, workflow_id: str, run_id: str = "") -> list[history_pb2.HistoryEvent]:
        resp = await self.history.get_workflow_history(
            self.domain,
            service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            ),
            5.0,
        )
        return list(resp.history.events)

    async def close_event(self, workflow_id: str, timeout: float = 10.0) -> history_pb2.HistoryEvent | None:  # noqa: ASYNC109
        resp = await self.history.get_workflow_history(
            self.domain,
            service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id),
                wait_for_new_event=True,
                history_event_filter_type=history_pb2.EVENT_FILTER_TYPE_CLOSE_EVENT,
            ),
            timeout,
        )
        return resp.history.events[-1] if resp.history.events else None

    # --- worker side -------------------------------------------------------------------

    async def poll_decision(
        self,
        task_list: str = "tl",
        timeout: float = 5.0,  # noqa: ASYNC109
        kind: int = tasklist_pb2.TASK_LIST_KIND_NORMAL,
    ) -> service_worker_pb2.PollForDecisionTaskResponse | None:
        req = service_worker_pb2.PollForDecisionTaskRequest(
            domain=DOMAIN,
            task_list=tasklist_pb2.TaskList(name=task_list, kind=kind),
            identity="worker",  # type: ignore[arg-type]
        )
        while True:
            task = await self.matching.poll(
                self.domain.id, task_list, TaskListType.DECISION, "worker", timeout, kind=kind
            )
            if task is None:
                return None
            try:
                resp = await self.history.record_decision_task_started(task, req)
            except StaleTaskError:
                self.matching.ack(task)
                continue
            self.matching.ack(task)
            return resp

    async def poll_activity(
        self,
        task_list: str = "tl",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> service_worker_pb2.PollForActivityTaskResponse | None:
        req = service_worker_pb2.PollForActivityTaskRequest(
            domain=DOMAIN, task_list=tasklist_pb2.TaskList(name=task_list), identity="worker"
        )
        while True:
            task = await self.matching.poll(
                self.domain.id, task_list, TaskListType.ACTIVITY, "worker", timeout
            )
            if task is None:
                return None
            try:
                resp = await self.history.record_activity_task_started(task, req)
            except StaleTaskError:
                self.matching.ack(task)
                continue
            self.matching.ack(task)
            return resp

    async def complete_decision(self, token: bytes, decisions: Sequence[decision_pb2.Decision]) -> None:
        await self.history.respond_decision_task_completed(
            service_worker_pb2.RespondDecisionTaskCompletedRequest(
                task_token=token, decisions=list(decisions), identity="worker"
            )
        )


# --- decisions ---------------------------------------------------------------------------


def schedule_activity(activity_id: str, *, s2c: float = 30, s2s: float = 10, stc: float = 30, hb: float = 0,
                      task_list: str = "tl", retry: common_pb2.RetryPolicy | None = None) -> decision_pb2.Decision:  # fmt: skip
    attrs = decision_pb2.ScheduleActivityTaskDecisionAttributes(
        activity_id=activity_id,
        activity_type=common_pb2.ActivityType(name="Act"),
        task_list=tasklist_pb2.TaskList(name=task_list),
        input=payload(f'"{activity_id}"'),
        schedule_to_close_timeout=seconds(s2c),
        schedule_to_start_timeout=seconds(s2s),
        start_to_close_timeout=seconds(stc),
        heartbeat_timeout=seconds(hb),
        header=common_pb2.Header(fields={"k": payload("v")}),
    )
    if retry is not None:
        attrs.retry_policy.CopyFrom(retry)
    return decision_pb2.Decision(schedule_activity_task_decision_attributes=attrs)


def complete_workflow(result: str = '"done"') -> decision_pb2.Decision:
    return decision_pb2.Decision(
        complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
            result=payload(result)
        )
    )


def cancel_activity(activity_id: str) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        request_cancel_activity_task_decision_attributes=decision_pb2.RequestCancelActivityTaskDecisionAttributes(
            activity_id=activity_id
        )
    )


def start_timer(timer_id: str, s: float) -> decision_pb2.Decision:
    return decision_pb2.Decision(
        start_timer_decision_attributes=decision_pb2.StartTimerDecisionAttributes(
            timer_id=timer_id, start_to_fire_timeout=seconds(s)
        )
    )


def kinds(events: Sequence[history_pb2.HistoryEvent]) -> list[str]:
    """Event kinds without the `_event_attributes` suffix, e.g. 'decision_task_started'."""
    return [str(e.WhichOneof("attributes")).removesuffix("_event_attributes") for e in events]


def assert_dense(events: Sequence[history_pb2.HistoryEvent]) -> None:
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert e.event_time.seconds > 0
