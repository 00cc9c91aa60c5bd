"""Shard fencing across two real server processes on one PostgreSQL / MariaDB database.

Server A owns every shard; server B starts on the same store and takes them all
(bumping each shard's range_id). A's next writes fail with ShardOwnershipLost, which
its clients see as ABORTED, and nothing A tried to write after losing the shards is
visible to anyone; B, the new owner, writes normally.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cadence.api.v1 import (
    common_pb2,
    history_pb2,
    service_domain_pb2,
    service_domain_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    tasklist_pb2,
)

from cadence_fast.history.engine import shard_of

SHARDS = 4
DOMAIN = "fencing"
TASK_LIST = "fencing-tl"


class Frontend:
    """Raw gRPC calls (the official client's generated stubs) to one server."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.workflow = service_workflow_pb2_grpc.WorkflowAPIStub(self.channel)
        self.domain = service_domain_pb2_grpc.DomainAPIStub(self.channel)

    def register_domain(self) -> None:
        req = service_domain_pb2.RegisterDomainRequest(name=DOMAIN)
        req.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
        self.domain.RegisterDomain(req, timeout=30)

    def start(self, workflow_id: str) -> str:
        req = service_workflow_pb2.StartWorkflowExecutionRequest(
            domain=DOMAIN,
            workflow_id=workflow_id,
            workflow_type=common_pb2.WorkflowType(name="FencingWorkflow"),
            task_list=tasklist_pb2.TaskList(name=TASK_LIST),
            identity="fencing-test",
            request_id=str(uuid.uuid4()),
        )
        req.execution_start_to_close_timeout.FromTimedelta(timedelta(minutes=10))
        req.task_start_to_close_timeout.FromTimedelta(timedelta(seconds=10))
        return str(self.workflow.StartWorkflowExecution(req, timeout=30).run_id)

    def signal(self, workflow_id: str, name: str) -> None:
        self.workflow.SignalWorkflowExecution(
            service_workflow_pb2.SignalWorkflowExecutionRequest(
                domain=DOMAIN,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id),
                signal_name=name,
                identity="fencing-test",
                request_id=str(uuid.uuid4()),
            ),
            timeout=30,
        )

    def signals(self, workflow_id: str) -> list[str]:
        resp = self.workflow.GetWorkflowExecutionHistory(
            service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
                domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id)
            ),
            timeout=30,
        )
        events: list[history_pb2.HistoryEvent] = list(resp.history.events)
        return [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in events
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]

    def exists(self, workflow_id: str) -> bool:
        try:
            self.workflow.DescribeWorkflowExecution(
                service_workflow_pb2.DescribeWorkflowExecutionRequest(
                    domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id)
                ),
                timeout=30,
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def close(self) -> None:
        self.channel.close()


def _other_shard_id(than: str) -> str:
    """A workflow id on another shard than `than` (A re-takes a shard only where it failed)."""
    while True:
        wf = f"fenced-{uuid.uuid4().hex[:8]}"
        if shard_of(wf, SHARDS) != shard_of(than, SHARDS):
            return wf


def _retry_aborted(fn: object, attempts: int = 20) -> None:
    for _ in range(attempts):
        try:
            fn()  # type: ignore[operator]
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ABORTED:
                raise
            time.sleep(0.2)  # the owner re-acquires its shard, as a client's retry would wait
    raise AssertionError("still ABORTED after retries")


def test_older_owner_is_fenced(server_store_url: str, server_factory: type, tmp_path: Path) -> None:
    a = server_factory(server_store_url, extra=["--shards", str(SHARDS)]).start()
    fa = Frontend(a.address)
    fb: Frontend | None = None
    try:
        fa.register_domain()
        wf1 = f"fencing-{uuid.uuid4().hex[:8]}"
        fa.start(wf1)
        fa.signal(wf1, "a-before-losing")  # A owns the shards: fine

        b = server_factory(server_store_url, extra=["--shards", str(SHARDS)]).start()  # takes every shard
        fb = Frontend(b.address)

        with pytest.raises(grpc.RpcError) as lost:
            fa.signal(wf1, "a-after-losing")
        assert lost.value.code() == grpc.StatusCode.ABORTED, lost.value.details()

        wf2 = _other_shard_id(wf1)
        with pytest.raises(grpc.RpcError) as lost:
            fa.start(wf2)
        assert lost.value.code() == grpc.StatusCode.ABORTED, lost.value.details()

        # Nothing A wrote after losing the shards is there, as the new owner sees it...
        assert fb.signals(wf1) == ["a-before-losing"]
        assert not fb.exists(wf2)
        # ...and the new owner writes normally (retrying ABORTED as clients do: A re-took
        # wf1's shard when its write failed, so B may have to take it back once).
        _retry_aborted(lambda: fb.signal(wf1, "b-owner"))  # type: ignore[union-attr]
        assert fb.signals(wf1) == ["a-before-losing", "b-owner"]
    finally:
        fa.close()
        if fb is not None:
            fb.close()
