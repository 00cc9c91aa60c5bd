"""uber.cadence.api.v1.DomainAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cadence.api.v1 import service_domain_pb2_grpc

from cadence_fast.api.base import ApiServicer

if TYPE_CHECKING:
    from cadence_fast.server import Services


class DomainAPI(ApiServicer, service_domain_pb2_grpc.DomainAPIServicer):
    service_name = "uber.cadence.api.v1.DomainAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
