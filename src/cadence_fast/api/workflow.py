"""uber.cadence.api.v1.WorkflowAPI: validate, resolve the domain, hand to the history engine.

The handlers hold no state: each checks its request (api.validation), resolves the
domain name through the domain cache (a dict hit) and calls the engine method of
INTERFACES.md with the request proto. Errors are typed exceptions; `api.base` turns them
into statuses. Task-list introspection comes from the TaskListHandlers mixin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from cadence.api.v1 import service_workflow_pb2 as pb
from cadence.api.v1 import service_workflow_pb2_grpc

from cadence_fast import errors
from cadence_fast.api import validation as check
from cadence_fast.api.base import ApiServicer
from cadence_fast.api.tasklist import TaskListHandlers

if TYPE_CHECKING:
    from cadence_fast.domain.cache import DomainEntry
    from cadence_fast.server import Services

#: The deadline a call without one gets for its long poll (the client always sends 60 s).
DEFAULT_LONG_POLL_SECONDS = 60.0
#: Long polls answer this long before the caller's deadline so the reply arrives in time.
LONG_POLL_MARGIN_SECONDS = 1.0


def long_poll_timeout(context: grpc.aio.ServicerContext) -> float:
    """Seconds a long poll may wait: the call's remaining time minus a margin.

    A short deadline keeps half of what is left rather than nothing, so a caller with a
    1.5 s budget still gets a (short) wait instead of an instant empty reply."""
    remaining = context.time_remaining()
    if remaining is None:
        remaining = DEFAULT_LONG_POLL_SECONDS
    if remaining > 2 * LONG_POLL_MARGIN_SECONDS:
        return remaining - LONG_POLL_MARGIN_SECONDS
    return max(0.0, remaining / 2)


async def resolve_domain(services: Services, name: str) -> DomainEntry:
    """The domain named by a request; EntityNotExistsError when it is not registered."""
    return await services.domains.get_by_name(check.domain_name(name))


class WorkflowAPI(ApiServicer, TaskListHandlers, service_workflow_pb2_grpc.WorkflowAPIServicer):
    service_name = "uber.cadence.api.v1.WorkflowAPI"
    # A whole cached history is sent as its stored bytes (views.HistoryPageResponse).
    encoded_responses = {"GetWorkflowExecutionHistory": pb.GetWorkflowExecutionHistoryRequest}

    def __init__(self, services: Services) -> None:
        self.services = services
        self._blob_limit = services.config.blob_size_limit

    async def _startable_domain(self, name: str) -> DomainEntry:
        domain = await resolve_domain(self.services, name)
        if domain.deprecated:
            # Go Cadence refuses new work in a deprecated domain; existing runs go on.
            raise errors.BadRequestError(f"Domain {name} is deprecated.")
        return domain

    async def StartWorkflowExecution(
        self, request: pb.StartWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartWorkflowExecutionResponse:
        check.start_request(request, self._blob_limit)
        domain = await self._startable_domain(request.domain)
        return await self.services.history.start_workflow(domain, request)

    async def SignalWorkflowExecution(
        self, request: pb.SignalWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignalWorkflowExecutionResponse:
        check.signal_request(request, self._blob_limit)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.signal_workflow(domain, request)

    async def SignalWithStartWorkflowExecution(
        self, request: pb.SignalWithStartWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignalWithStartWorkflowExecutionResponse:
        check.signal_with_start_request(request, self._blob_limit)
        domain = await self._startable_domain(request.start_request.domain)
        return await self.services.history.signal_with_start_workflow(domain, request)

    async def RequestCancelWorkflowExecution(
        self, request: pb.RequestCancelWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RequestCancelWorkflowExecutionResponse:
        check.execution_request(request)
        check.identity(request.identity)
        check.run_id(request.first_execution_run_id)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.request_cancel_workflow(domain, request)

    async def TerminateWorkflowExecution(
        self, request: pb.TerminateWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.TerminateWorkflowExecutionResponse:
        check.execution_request(request)
        check.identity(request.identity)
        check.run_id(request.first_execution_run_id)
        check.payload(request.details, "Details", self._blob_limit)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.terminate_workflow(domain, request)

    async def DescribeWorkflowExecution(
        self, request: pb.DescribeWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeWorkflowExecutionResponse:
        check.execution_request(request)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.describe_workflow(domain, request)

    async def GetWorkflowExecutionHistory(
        self, request: pb.GetWorkflowExecutionHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWorkflowExecutionHistoryResponse:
        check.execution_request(request)
        if request.page_size < 0:
            # Go treats a non-positive page size as "the default"; ours is "everything".
            request.page_size = 0
        domain = await resolve_domain(self.services, request.domain)
        timeout = long_poll_timeout(context)
        return await self.services.history.get_workflow_history(domain, request, timeout)

    # --- queries, reset, restart, task refresh ---------------------------------------

    async def QueryWorkflow(
        self, request: pb.QueryWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryWorkflowResponse:
        check.execution_request(request)
        if not request.HasField("query"):
            raise errors.BadRequestError("WorkflowQuery is not set on request.")
        if not request.query.query_type:
            raise errors.BadRequestError("QueryType is not set on request.")
        check.payload(request.query.query_args, "QueryArgs", self._blob_limit)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.query_workflow(domain, request, long_poll_timeout(context))

    async def ResetWorkflowExecution(
        self, request: pb.ResetWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetWorkflowExecutionResponse:
        check.execution_request(request)
        if request.decision_finish_event_id <= 0:
            raise errors.BadRequestError("DecisionFinishEventId must be greater than 0.")
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.reset_workflow(domain, request)

    async def RestartWorkflowExecution(
        self, request: pb.RestartWorkflowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RestartWorkflowExecutionResponse:
        check.execution_request(request)
        check.identity(request.identity)
        domain = await self._startable_domain(request.domain)
        return await self.services.history.restart_workflow(domain, request)

    async def RefreshWorkflowTasks(
        self, request: pb.RefreshWorkflowTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefreshWorkflowTasksResponse:
        check.execution_request(request)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.refresh_workflow_tasks(domain, request)

