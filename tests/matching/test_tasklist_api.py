"""Task-list introspection over gRPC: a real server process, raw calls through the official
client's stubs (DescribeTaskList, GetTaskListsByDomain, ListTaskListPartitions)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import grpc
import pytest
from cadence.api.v1 import service_domain_pb2 as domain_pb
from cadence.api.v1 import service_worker_pb2 as worker_pb
from cadence.api.v1 import service_workflow_pb2 as pb
from cadence.api.v1 import tasklist_pb2
from cadence.client import Client
from cadence.error import CadenceRpcError, EntityNotExistsError

from tests.conftest import ServerProcess, unique

pytestmark = pytest.mark.e2e

DECISION = tasklist_pb2.TASK_LIST_TYPE_DECISION
ACTIVITY = tasklist_pb2.TASK_LIST_TYPE_ACTIVITY


async def _register(client: Client, name: str) -> None:
    request = domain_pb.RegisterDomainRequest(name=name)
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
    await client.domain_stub.RegisterDomain(request)


async def test_describe_list_and_partitions(server: ServerProcess) -> None:
    domain = unique("tl-domain")
    name = unique("tl")
    async with Client(domain=domain, target=server.address) as client:
        await _register(client, domain)
        tl = tasklist_pb2.TaskList(name=name, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL)
        # Two empty long polls (short deadlines) register their pollers.
        await client.worker_stub.PollForActivityTask(
            worker_pb.PollForActivityTaskRequest(domain=domain, task_list=tl, identity="actor@test"),
            timeout=2.5,
        )
        await client.worker_stub.PollForDecisionTask(
            worker_pb.PollForDecisionTaskRequest(domain=domain, task_list=tl, identity="decider@test"),
            timeout=2.5,
        )

        resp = await client.workflow_stub.DescribeTaskList(
            pb.DescribeTaskListRequest(
                domain=domain, task_list=tl, task_list_type=ACTIVITY, include_task_list_status=True
            )
        )
        assert [p.identity for p in resp.pollers] == ["actor@test"]
        assert abs(resp.pollers[0].last_access_time.ToNanoseconds() - time.time_ns()) < 30 * 10**9
        assert resp.pollers[0].rate_per_second > 0
        assert resp.HasField("task_list_status")
        assert resp.task_list_status.backlog_count_hint == 0
        assert resp.task_list_status.task_id_block.end_id > resp.task_list_status.task_id_block.start_id
        assert resp.task_list.name == name

        without_status = await client.workflow_stub.DescribeTaskList(
            pb.DescribeTaskListRequest(domain=domain, task_list=tl, task_list_type=DECISION)
        )
        assert [p.identity for p in without_status.pollers] == ["decider@test"]
        assert not without_status.HasField("task_list_status")

        lists = await client.workflow_stub.GetTaskListsByDomain(pb.GetTaskListsByDomainRequest(domain=domain))
        assert list(lists.decision_task_list_map) == [name]
        assert list(lists.activity_task_list_map) == [name]
        assert [p.identity for p in lists.activity_task_list_map[name].pollers] == ["actor@test"]

        parts = await client.workflow_stub.ListTaskListPartitions(
            pb.ListTaskListPartitionsRequest(domain=domain, task_list=tl)
        )
        assert [p.key for p in parts.decision_task_list_partitions] == [name]
        assert [p.key for p in parts.activity_task_list_partitions] == [name]
        assert parts.decision_task_list_partitions[0].owner_host_name.endswith(f":{server.port}")


async def test_introspection_bad_input(server: ServerProcess) -> None:
    domain = unique("tl-bad")
    async with Client(domain=domain, target=server.address) as client:
        await _register(client, domain)
        stub = client.workflow_stub
        tl = tasklist_pb2.TaskList(name="some-list")
        cases = [
            (pb.DescribeTaskListRequest(task_list=tl, task_list_type=DECISION), "Domain not set"),
            (pb.DescribeTaskListRequest(domain=domain, task_list_type=DECISION), "TaskList is not set"),
            (pb.DescribeTaskListRequest(domain=domain, task_list=tl), "TaskListType is not set"),
        ]
        for request, message in cases:
            with pytest.raises(CadenceRpcError) as info:
                await stub.DescribeTaskList(request)
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert message in str(info.value)
        with pytest.raises(CadenceRpcError) as info:
            await stub.ListTaskListPartitions(pb.ListTaskListPartitionsRequest(domain=domain))
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(EntityNotExistsError):
            await stub.GetTaskListsByDomain(pb.GetTaskListsByDomainRequest(domain=unique("no-such-domain")))
        with pytest.raises(EntityNotExistsError):
            await stub.DescribeTaskList(
                pb.DescribeTaskListRequest(
                    domain=unique("no-such-domain"), task_list=tl, task_list_type=DECISION
                )
            )
        await asyncio.sleep(0)
