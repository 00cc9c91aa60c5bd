"""Task-list introspection RPCs of WorkflowAPI (DescribeTaskList, GetTaskListsByDomain,
ListTaskListPartitions), mixed into `api.workflow.WorkflowAPI`.

Answers come from the matching engine (pollers, backlog, levels). This server keeps one
partition per task list (the root partition, named like the list), owned by this host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from cadence.api.v1 import service_workflow_pb2 as pb
from cadence.api.v1 import tasklist_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from cadence_fast.api import validation as check
from cadence_fast.errors import BadRequestError
from cadence_fast.matching.task import KIND_NORMAL
from cadence_fast.matching.task_list import DEFAULT_RATE_PER_SECOND
from cadence_fast.persistence.records import TaskListType

if TYPE_CHECKING:
    from cadence_fast.domain.cache import DomainEntry
    from cadence_fast.matching.task_list import PollerInfo, TaskListDescription
    from cadence_fast.server import Services

#: api.v1 TaskListType -> the store's task type.
_TASK_TYPES = {
    tasklist_pb2.TASK_LIST_TYPE_DECISION: TaskListType.DECISION,
    tasklist_pb2.TASK_LIST_TYPE_ACTIVITY: TaskListType.ACTIVITY,
}


def _poller_info(p: PollerInfo) -> tasklist_pb2.PollerInfo:
    ts = Timestamp()
    ts.FromNanoseconds(p.last_access_time)
    return tasklist_pb2.PollerInfo(
        last_access_time=ts, identity=p.identity, rate_per_second=p.rate_per_second
    )


def _describe_response(d: TaskListDescription, include_status: bool) -> pb.DescribeTaskListResponse:
    resp = pb.DescribeTaskListResponse(
        pollers=[_poller_info(p) for p in d.pollers],
        task_list=tasklist_pb2.TaskList(name=d.name, kind=d.kind or KIND_NORMAL),  # type: ignore[arg-type]
    )
    if include_status:
        start, end = d.task_id_block
        resp.task_list_status.CopyFrom(
            tasklist_pb2.TaskListStatus(
                backlog_count_hint=d.backlog_count,
                read_level=d.read_level,
                ack_level=d.ack_level,
                rate_per_second=DEFAULT_RATE_PER_SECOND,
                task_id_block=tasklist_pb2.TaskIDBlock(start_id=start, end_id=end),
                empty=d.backlog_count == 0,
            )
        )
    return resp


class TaskListHandlers:
    services: Services

    async def _tasklist_domain(self, name: str) -> DomainEntry:
        return await self.services.domains.get_by_name(check.domain_name(name))

    async def DescribeTaskList(
        self, request: pb.DescribeTaskListRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeTaskListResponse:
        check.domain_name(request.domain)
        check.task_list(request.task_list)
        task_type = _TASK_TYPES.get(request.task_list_type)
        if task_type is None:
            raise BadRequestError("TaskListType is not set on request.")
        domain = await self._tasklist_domain(request.domain)
        kind = request.task_list.kind or KIND_NORMAL
        desc = await self.services.matching.describe(domain.id, request.task_list.name, task_type, kind)
        return _describe_response(desc, request.include_task_list_status)

    async def GetTaskListsByDomain(
        self, request: pb.GetTaskListsByDomainRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTaskListsByDomainResponse:
        domain = await self._tasklist_domain(request.domain)
        resp = pb.GetTaskListsByDomainResponse()
        for d in await self.services.matching.list_task_lists(domain.id):
            target = (
                resp.decision_task_list_map
                if d.task_type == TaskListType.DECISION
                else resp.activity_task_list_map
            )
            target[d.name].CopyFrom(_describe_response(d, include_status=False))
        return resp

    async def ListTaskListPartitions(
        self, request: pb.ListTaskListPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTaskListPartitionsResponse:
        check.domain_name(request.domain)
        check.task_list(request.task_list)
        await self._tasklist_domain(request.domain)
        config = self.services.config
        root = tasklist_pb2.TaskListPartitionMetadata(
            key=request.task_list.name, owner_host_name=f"{config.host}:{config.port}"
        )
        return pb.ListTaskListPartitionsResponse(
            activity_task_list_partitions=[root], decision_task_list_partitions=[root]
        )
