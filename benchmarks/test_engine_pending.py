"""The cost of one workflow update as pending state grows: 1 vs 1,000 pending activities.

Engine level, with everything real but gRPC: HistoryEngine + MatchingEngine on an SQLite
file (WAL, synchronous FULL: every round waits for its fsync). A run schedules N activities
in its first decision; one of them is started. Then each round is one update of that run:
- heartbeat: RecordActivityTaskHeartbeat of the started activity (one activity row);
- signal: SignalWorkflowExecution (one event; a decision gets scheduled once).
Goal (issue 6): the N = 1,000 case within 2x of N = 1 (compare the medians of a group).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cadence.api.v1 import (
    common_pb2,
    decision_pb2,
    service_domain_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
)
from support import run
from workloads import schedule_activity, seconds

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache
from cadence_fast.domain.registry import DomainRegistry
from cadence_fast.history.engine import HistoryEngine
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.persistence.records import TaskListType
from cadence_fast.persistence.sqlite.store import SQLiteStore

DOMAIN = "bench"
TASK_LIST = "bench-tl"


class EngineRun:
    """One open run with `pending` pending activities, one of them started."""

    def __init__(self, path: Path, pending: int) -> None:
        self.path, self.pending = path, pending

    async def open(self) -> EngineRun:
        self.store = SQLiteStore(f"sqlite:///{self.path}")
        await self.store.open(create_schema=True)
        self.domains = DomainCache(self.store)
        await self.domains.start()
        await DomainRegistry(self.store, self.domains).register(
            service_domain_pb2.RegisterDomainRequest(name=DOMAIN, workflow_execution_retention_period=seconds(86400))
        )
        self.domain = await self.domains.get_by_name(DOMAIN)
        self.matching = MatchingEngine(self.store)
        await self.matching.start()
        self.history = HistoryEngine(self.store, ServerConfig(shards=1), self.domains, self.matching)
        await self.history.start()
        self.workflow_id = f"wf-{uuid.uuid4().hex[:8]}"
        await self.history.start_workflow(
            self.domain,
            service_workflow_pb2.StartWorkflowExecutionRequest(
                domain=DOMAIN, workflow_id=self.workflow_id,
                workflow_type=common_pb2.WorkflowType(name="bench-workflow"),
                task_list=tasklist_pb2.TaskList(name=TASK_LIST),
                execution_start_to_close_timeout=seconds(3600), task_start_to_close_timeout=seconds(60),
                identity="bench", request_id=str(uuid.uuid4()),
            ),
        )  # fmt: skip
        decision = await self._poll(TaskListType.DECISION)
        decisions: list[decision_pb2.Decision] = [schedule_activity(f"a{i}") for i in range(self.pending)]
        await self.history.respond_decision_task_completed(
            service_worker_pb2.RespondDecisionTaskCompletedRequest(
                task_token=decision.task_token, decisions=decisions, identity="bench"
            )
        )
        activity = await self._poll(TaskListType.ACTIVITY)
        self.activity_token = activity.task_token
        await self._quiesce()
        return self

    async def _poll(self, task_type: int) -> Any:
        while True:
            task = await self.matching.poll(self.domain.id, TASK_LIST, task_type, "bench", 10.0)
            assert task is not None, "no task within 10 s"
            try:
                if task_type == TaskListType.DECISION:
                    return await self.history.record_decision_task_started(
                        task, service_worker_pb2.PollForDecisionTaskRequest(identity="bench")
                    )
                return await self.history.record_activity_task_started(
                    task, service_worker_pb2.PollForActivityTaskRequest(identity="bench")
                )
            finally:
                self.matching.ack(task)

    async def _quiesce(self) -> None:
        """Let the transfer queue hand every scheduled activity to matching before measuring."""
        for _ in range(600):
            if not any(q.outstanding for q in self.history.transfer_queues):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("transfer tasks still outstanding after 30 s")

    async def heartbeat(self) -> None:
        resp = await self.history.record_activity_task_heartbeat(
            service_worker_pb2.RecordActivityTaskHeartbeatRequest(
                task_token=self.activity_token, details=common_pb2.Payload(data=b'"progress"'), identity="bench"
            )
        )
        assert not resp.cancel_requested

    async def signal(self) -> None:
        await self.history.signal_workflow(
            self.domain,
            service_workflow_pb2.SignalWorkflowExecutionRequest(
                domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=self.workflow_id),
                signal_name="bench", signal_input=common_pb2.Payload(data=b'"x"'), identity="bench",
            ),
        )  # fmt: skip

    async def close(self) -> None:
        await self.matching.stop()
        await self.history.stop()
        await self.domains.stop()
        await self.store.close()


@pytest.fixture(scope="module", params=[1, 1_000], ids=lambda n: f"pending={n}")
def engine_run(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineRun]:
    path = tmp_path_factory.mktemp("engine") / "cadence.db"
    r = run(loop, lambda: EngineRun(path, int(request.param)).open())
    yield r
    run(loop, r.close)


def test_heartbeat(benchmark: Any, engine_run: EngineRun, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "engine: one update, heartbeat (pending activities 1 vs 1,000)"
    benchmark.extra_info["pending_activities"] = engine_run.pending
    benchmark.pedantic(lambda: run(loop, engine_run.heartbeat), rounds=200, iterations=1, warmup_rounds=5)


def test_signal(benchmark: Any, engine_run: EngineRun, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "engine: one update, signal (pending activities 1 vs 1,000)"
    benchmark.extra_info["pending_activities"] = engine_run.pending
    benchmark.pedantic(lambda: run(loop, engine_run.signal), rounds=200, iterations=1, warmup_rounds=5)
