"""uber.cadence.api.v1.VisibilityAPI: list, scan and count workflows; search attributes.

ListOpen/ListClosed take Cadence's structured filters (a time range plus at most one
of workflow id, type or close status) and are answered as Cadence's Elasticsearch
visibility does: open runs by StartTime, closed runs by CloseTime, newest first.
List/Scan/Count take the query language (visibility.query). Everything becomes one
typed AST that the store compiles; no request text reaches a database as code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from cadence.api.v1 import service_visibility_pb2 as pb
from cadence.api.v1 import service_visibility_pb2_grpc

from cadence_fast.api import validation as check
from cadence_fast.api.base import ApiServicer
from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.records import CloseStatus
from cadence_fast.persistence.visibility_query import (
    Between,
    Compare,
    Expr,
    IsNull,
    OrderBy,
    VisibilityQuery,
    attr,
    conjunction,
)

if TYPE_CHECKING:
    from cadence_fast.domain.cache import DomainEntry
    from cadence_fast.server import Services

_MAX_NS = 2**63 - 1
ARCHIVAL_NOT_ENABLED = (
    "Cluster is not configured for visibility archival: archival is not enabled on this server."
)


def _time_range(request: Any) -> tuple[int, int]:
    """The request's StartTimeFilter as [earliest, latest] ns, validated as Cadence does."""
    if not request.HasField("start_time_filter"):
        raise BadRequestError("StartTimeFilter is required")
    f = request.start_time_filter
    if not f.HasField("earliest_time"):
        raise BadRequestError("EarliestTime in StartTimeFilter is required")
    if not f.HasField("latest_time"):
        raise BadRequestError("LatestTime in StartTimeFilter is required")
    earliest = f.earliest_time.seconds * 1_000_000_000 + f.earliest_time.nanos
    latest = min(f.latest_time.seconds * 1_000_000_000 + f.latest_time.nanos, _MAX_NS)
    if earliest > latest:
        raise BadRequestError("EarliestTime in StartTimeFilter should not be larger than LatestTime")
    return earliest, latest


def _one_filter(request: Any) -> Expr | None:
    """The id/type/status filter of a ListOpen/ListClosed request (a proto oneof), as an AST node."""
    which = request.WhichOneof("filters")
    if which is None:
        return None
    if which == "execution_filter":
        if not request.execution_filter.workflow_id:
            raise BadRequestError("WorkflowID is not set on ExecutionFilter.")
        return Compare(attr("WorkflowID"), "=", request.execution_filter.workflow_id)
    if which == "type_filter":
        if not request.type_filter.name:
            raise BadRequestError("WorkflowType name is not set on TypeFilter.")
        return Compare(attr("WorkflowType"), "=", request.type_filter.name)
    status = int(request.status_filter.status)
    if status == CloseStatus.NONE:
        return None  # INVALID: no status filter, as the Go mapper turns it into nil
    if status not in CloseStatus.__members__.values():
        raise BadRequestError(f"StatusFilter.status {status} is not a close status")
    return Compare(attr("CloseStatus"), "=", status)


class VisibilityAPI(ApiServicer, service_visibility_pb2_grpc.VisibilityAPIServicer):
    service_name = "uber.cadence.api.v1.VisibilityAPI"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def _domain(self, name: str) -> DomainEntry:
        return await self.services.domains.get_by_name(check.domain_name(name))

    async def ListOpenWorkflowExecutions(
        self, request: pb.ListOpenWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOpenWorkflowExecutionsResponse:
        domain = await self._domain(request.domain)
        earliest, latest = _time_range(request)
        where = conjunction(
            IsNull(attr("CloseTime")),
            Between(attr("StartTime"), earliest, latest),
            _one_filter(request),
        )
        query = VisibilityQuery(where, (OrderBy(attr("StartTime"), descending=True),))
        infos, token = await self.services.visibility.list(
            domain.id, query, request.page_size, request.next_page_token
        )
        return pb.ListOpenWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ListClosedWorkflowExecutions(
        self, request: pb.ListClosedWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClosedWorkflowExecutionsResponse:
        domain = await self._domain(request.domain)
        earliest, latest = _time_range(request)
        # Cadence filters and orders closed runs by their close time (its SQL and ES stores alike).
        where = conjunction(
            Between(attr("CloseTime"), earliest, latest),
            _one_filter(request),
        )
        query = VisibilityQuery(where, (OrderBy(attr("CloseTime"), descending=True),))
        infos, token = await self.services.visibility.list(
            domain.id, query, request.page_size, request.next_page_token
        )
        return pb.ListClosedWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ListWorkflowExecutions(
        self, request: pb.ListWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWorkflowExecutionsResponse:
        domain = await self._domain(request.domain)
        query = self.services.visibility.parse(request.query)
        infos, token = await self.services.visibility.list(
            domain.id, query, request.page_size, request.next_page_token
        )
        return pb.ListWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ScanWorkflowExecutions(
        self, request: pb.ScanWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScanWorkflowExecutionsResponse:
        domain = await self._domain(request.domain)
        query = self.services.visibility.parse(request.query)
        infos, token = await self.services.visibility.list(
            domain.id, query, request.page_size, request.next_page_token
        )
        return pb.ScanWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def CountWorkflowExecutions(
        self, request: pb.CountWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountWorkflowExecutionsResponse:
        domain = await self._domain(request.domain)
        query = self.services.visibility.parse(request.query)
        count = await self.services.visibility.count(domain.id, query)
        return pb.CountWorkflowExecutionsResponse(count=count)

    async def GetSearchAttributes(
        self, request: pb.GetSearchAttributesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSearchAttributesResponse:
        return pb.GetSearchAttributesResponse(keys=self.services.visibility.search_attribute_keys())

    async def ListArchivedWorkflowExecutions(
        self, request: pb.ListArchivedWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListArchivedWorkflowExecutionsResponse:
        await self._domain(request.domain)
        raise BadRequestError(ARCHIVAL_NOT_ENABLED)
