"""uber.cadence.api.v1.VisibilityAPI: list, scan and count workflows; search attributes.

ListOpen/ListClosed take Cadence's structured filters (a time range plus at most one
of workflow id, type or close status) and are answered as Cadence's Elasticsearch
visibility does: open runs by StartTime, closed runs by CloseTime, newest first.
List/Scan/Count take the query language (visibility.query). Everything becomes one
typed AST that the store compiles; no request text reaches a database as code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from cadence.api.v1 import service_visibility_pb2 as pb
from cadence.api.v1 import service_visibility_pb2_grpc
from cadence.api.v1.workflow_pb2 import WorkflowExecutionInfo

from cadence_fast.api.base import ApiServicer
from cadence_fast.api.workflow import resolve_domain
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


def _filters_query(request: Any, *, closed: bool) -> VisibilityQuery:
    """The structured filters of ListOpen/ListClosed as a query. Cadence filters and orders open
    runs by their start time, closed runs by their close time (its SQL and ES stores alike)."""
    earliest, latest = _time_range(request)
    time_attr = attr("CloseTime" if closed else "StartTime")
    where = conjunction(
        None if closed else IsNull(attr("CloseTime")),
        Between(time_attr, earliest, latest),
        _one_filter(request),
    )
    return VisibilityQuery(where, (OrderBy(time_attr, descending=True),))


class VisibilityAPI(ApiServicer, service_visibility_pb2_grpc.VisibilityAPIServicer):
    service_name = "uber.cadence.api.v1.VisibilityAPI"

    def __init__(self, services: Services) -> None:
        self.services = services

    def _parse(self, request: Any) -> VisibilityQuery:
        return self.services.visibility.parse(request.query)

    async def _page(
        self, request: Any, to_query: Callable[[Any], VisibilityQuery]
    ) -> tuple[list[WorkflowExecutionInfo], bytes]:
        """One page of the request's domain's runs that match the query made of the request.
        The domain is resolved first: an unknown domain is reported before a bad filter."""
        domain = await resolve_domain(self.services, request.domain)
        query = to_query(request)
        return await self.services.visibility.list(domain.id, query, request.page_size, request.next_page_token)

    async def ListOpenWorkflowExecutions(
        self, request: pb.ListOpenWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOpenWorkflowExecutionsResponse:
        infos, token = await self._page(request, functools.partial(_filters_query, closed=False))
        return pb.ListOpenWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ListClosedWorkflowExecutions(
        self, request: pb.ListClosedWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClosedWorkflowExecutionsResponse:
        infos, token = await self._page(request, functools.partial(_filters_query, closed=True))
        return pb.ListClosedWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ListWorkflowExecutions(
        self, request: pb.ListWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWorkflowExecutionsResponse:
        infos, token = await self._page(request, self._parse)
        return pb.ListWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def ScanWorkflowExecutions(
        self, request: pb.ScanWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScanWorkflowExecutionsResponse:
        # Served as a list: a Cadence scan differs only in promising no order.
        infos, token = await self._page(request, self._parse)
        return pb.ScanWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def CountWorkflowExecutions(
        self, request: pb.CountWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountWorkflowExecutionsResponse:
        domain = await resolve_domain(self.services, request.domain)
        query = self._parse(request)
        count = await self.services.visibility.count(domain.id, query)
        return pb.CountWorkflowExecutionsResponse(count=count)

    async def GetSearchAttributes(
        self, request: pb.GetSearchAttributesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSearchAttributesResponse:
        return pb.GetSearchAttributesResponse(keys=self.services.visibility.search_attribute_keys())

    async def ListArchivedWorkflowExecutions(
        self, request: pb.ListArchivedWorkflowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListArchivedWorkflowExecutionsResponse:
        await resolve_domain(self.services, request.domain)
        raise BadRequestError(ARCHIVAL_NOT_ENABLED)
