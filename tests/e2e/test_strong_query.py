"""STRONG queries ride on the decision task's `queries` map (Go Cadence's buffered queries),
answered in RespondDecisionTaskCompleted.query_results — driven with raw gRPC, the way the Go
and Java clients answer them. (The Python client sends only EVENTUAL queries and never sees
the map; its queries go out as query tasks, tested in test_queries.py.)"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from cadence.api.v1 import (
    common_pb2,
    query_pb2,
    service_worker_pb2,
    service_worker_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    tasklist_pb2,
)
from google.protobuf import duration_pb2

METADATA = (("rpc-service", "cadence-frontend"), ("rpc-caller", "test"), ("rpc-encoding", "proto"))


def _seconds(n: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=n)


async def test_strong_query_is_answered_through_the_decision_task(server: Any, domain: str) -> None:
    task_list = f"strong-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(server.address) as channel:
        workflows = service_workflow_pb2_grpc.WorkflowAPIStub(channel)
        worker = service_worker_pb2_grpc.WorkerAPIStub(channel)
        execution = common_pb2.WorkflowExecution(workflow_id=f"strong-{uuid.uuid4().hex[:8]}")
        started = await workflows.StartWorkflowExecution(
            service_workflow_pb2.StartWorkflowExecutionRequest(
                domain=domain,
                workflow_id=execution.workflow_id,
                workflow_type=common_pb2.WorkflowType(name="StrongQueryWorkflow"),
                task_list=tasklist_pb2.TaskList(name=task_list),
                execution_start_to_close_timeout=_seconds(60),
                task_start_to_close_timeout=_seconds(10),
                request_id=str(uuid.uuid4()),
            ),
            metadata=METADATA,
        )
        # The first decision is scheduled and nobody polls yet: a STRONG query waits for it.
        query = asyncio.ensure_future(
            workflows.QueryWorkflow(
                service_workflow_pb2.QueryWorkflowRequest(
                    domain=domain,
                    workflow_execution=common_pb2.WorkflowExecution(
                        workflow_id=execution.workflow_id, run_id=started.run_id
                    ),
                    query=query_pb2.WorkflowQuery(query_type="state", query_args=common_pb2.Payload(data=b"1")),
                    query_consistency_level=query_pb2.QUERY_CONSISTENCY_LEVEL_STRONG,
                ),
                metadata=METADATA,
                timeout=30,
            )
        )
        await asyncio.sleep(0.5)
        assert not query.done()
        task = await worker.PollForDecisionTask(
            service_worker_pb2.PollForDecisionTaskRequest(
                domain=domain, task_list=tasklist_pb2.TaskList(name=task_list), identity="go-like"
            ),
            metadata=METADATA,
            timeout=30,
        )
        assert task.task_token and not task.HasField("query")
        assert len(task.queries) == 1
        (query_id, carried), = task.queries.items()
        assert carried.query_type == "state" and carried.query_args.data == b"1"
        await worker.RespondDecisionTaskCompleted(
            service_worker_pb2.RespondDecisionTaskCompletedRequest(
                task_token=task.task_token,
                identity="go-like",
                query_results={
                    query_id: query_pb2.WorkflowQueryResult(
                        result_type=query_pb2.QUERY_RESULT_TYPE_ANSWERED,
                        answer=common_pb2.Payload(data=b'"strong answer"'),
                    )
                },
            ),
            metadata=METADATA,
        )
        answer = await asyncio.wait_for(query, 20)
        assert answer.query_result.data == b'"strong answer"'
        assert not answer.HasField("query_rejected")
