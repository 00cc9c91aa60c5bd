"""uber.cadence.api.v1.DomainAPI: protos in and out; the rules live in domain.registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import grpc
from cadence.api.v1 import service_domain_pb2 as pb
from cadence.api.v1 import service_domain_pb2_grpc

from cadence_fast.api.base import ApiServicer
from cadence_fast.domain.registry import DomainRegistry

if TYPE_CHECKING:
    from cadence_fast.server import Services

Ctx: TypeAlias = grpc.aio.ServicerContext


class DomainAPI(ApiServicer, service_domain_pb2_grpc.DomainAPIServicer):
    service_name = "uber.cadence.api.v1.DomainAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.registry = DomainRegistry(services.store, services.domains)

    async def RegisterDomain(
        self, request: pb.RegisterDomainRequest, context: Ctx
    ) -> pb.RegisterDomainResponse:
        await self.registry.register(request)
        return pb.RegisterDomainResponse()

    async def DescribeDomain(
        self, request: pb.DescribeDomainRequest, context: Ctx
    ) -> pb.DescribeDomainResponse:
        domain = await self.registry.describe(name=request.name, domain_id=request.id)
        return pb.DescribeDomainResponse(domain=domain)

    async def ListDomains(self, request: pb.ListDomainsRequest, context: Ctx) -> pb.ListDomainsResponse:
        domains, token = await self.registry.list(request.page_size, request.next_page_token)
        return pb.ListDomainsResponse(domains=domains, next_page_token=token)

    async def UpdateDomain(self, request: pb.UpdateDomainRequest, context: Ctx) -> pb.UpdateDomainResponse:
        return pb.UpdateDomainResponse(domain=await self.registry.update(request))

    async def DeprecateDomain(
        self, request: pb.DeprecateDomainRequest, context: Ctx
    ) -> pb.DeprecateDomainResponse:
        await self.registry.deprecate(request.name)
        return pb.DeprecateDomainResponse()

    async def DeleteDomain(self, request: pb.DeleteDomainRequest, context: Ctx) -> pb.DeleteDomainResponse:
        await self.registry.delete(request.name)
        return pb.DeleteDomainResponse()

    async def FailoverDomain(
        self, request: pb.FailoverDomainRequest, context: Ctx
    ) -> pb.FailoverDomainResponse:
        await self.registry.failover(request)
        return pb.FailoverDomainResponse()  # unreachable: failover always raises on one cluster

    async def ListFailoverHistory(
        self, request: pb.ListFailoverHistoryRequest, context: Ctx
    ) -> pb.ListFailoverHistoryResponse:
        # A single cluster never fails over: the history is always empty.
        return pb.ListFailoverHistoryResponse()
